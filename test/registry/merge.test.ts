import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { mergeImages } from "../../src/registry/merge.js";
import type { ImageEntry } from "../../src/registry/types.js";

const linux: ImageEntry = {
  name: "linux",
  version: "0.0.1",
  description: "Linux guest",
  sha256: "a".repeat(64),
  arch: "aarch64",
  url: "https://x/linux.tar.gz",
  released_at: "2026-04-10T02:35:51Z",
};

describe("mergeImages", () => {
  it("drops identical duplicates silently, keeping first-seen order", () => {
    const other = { ...linux, name: "other" };
    const result = mergeImages([
      { source: "https://x/default.toml", images: [linux] },
      { source: "https://x/v1.toml", images: [other, { ...linux }] },
    ]);
    assert.deepEqual(result.images, [linux, other]);
    assert.equal(result.images[0], linux);
    assert.deepEqual(result.warnings, []);
  });

  it("keeps the first of conflicting duplicates and warns naming the image and both sources", () => {
    const changed = { ...linux, sha256: "b".repeat(64) };
    const result = mergeImages([
      { source: "https://x/default.toml", images: [linux] },
      { source: "https://x/v1.toml", images: [changed] },
    ]);
    assert.deepEqual(result.images, [linux]);
    assert.deepEqual(result.warnings, [
      "image linux:0.0.1 in https://x/v1.toml differs from the one in https://x/default.toml; " +
        "keeping the one from https://x/default.toml",
    ]);
  });

  it("treats a missing released_at as different content", () => {
    const { released_at: _, ...undated } = linux;
    const result = mergeImages([
      { source: "a.toml", images: [undated] },
      { source: "b.toml", images: [linux] },
    ]);
    assert.equal(result.images[0], undated);
    assert.equal(result.warnings.length, 1);
  });
});
