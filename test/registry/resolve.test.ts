import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { UsageError } from "../../src/errors.js";
import { listImages } from "../../src/ops/ls.js";
import { parseRegistry } from "../../src/registry/format.js";
import {
  compareVersions,
  findImage,
  formatSpec,
  parseSpec,
  suggest,
} from "../../src/registry/resolve.js";
import type { ImageEntry } from "../../src/registry/types.js";
import { fixture } from "./support.js";

function image(name: string, version: string, released_at?: string): ImageEntry {
  const entry: ImageEntry = {
    name,
    version,
    description: "",
    sha256: "0".repeat(64),
    arch: "aarch64",
    url: `https://x/${name}-${version}.tar.gz`,
  };
  if (released_at !== undefined) entry.released_at = released_at;
  return entry;
}

describe("parseSpec / formatSpec", () => {
  it("reads NAME and NAME:VERSION", () => {
    assert.deepEqual(parseSpec("qemu_aarch64_linux"), { name: "qemu_aarch64_linux" });
    assert.deepEqual(parseSpec("phytiumpi-freertos:0.0.26"), {
      name: "phytiumpi-freertos",
      version: "0.0.26",
    });
    assert.equal(formatSpec({ name: "a", version: "1.0+b" }), "a:1.0+b");
    assert.equal(formatSpec({ name: "a" }), "a");
  });

  it("refuses empty names, empty versions and bad characters with a UsageError", () => {
    const cases: [string, RegExp][] = [
      ["", /^invalid image "": name is empty$/],
      [":1", /^invalid image ":1": name is empty$/],
      ["linux:", /^invalid image "linux:": version is empty$/],
      ["../etc", /^invalid image "\.\.\/etc": name "\.\.\/etc" may only contain/],
      ["a:b:c", /^invalid image "a:b:c": version "b:c" may only contain/],
      ["a b", /name "a b" may only contain/],
    ];
    for (const [text, message] of cases) {
      assert.throws(
        () => parseSpec(text),
        (err: unknown) =>
          err instanceof UsageError && err.exitCode === 2 && message.test(err.message),
        text,
      );
    }
  });
});

describe("findImage", () => {
  it("finds an exact NAME:VERSION", () => {
    const images = [image("a", "1"), image("a", "2"), image("b", "1")];
    assert.equal(findImage(images, { name: "a", version: "2" }), images[1]);
    assert.equal(findImage(images, { name: "a", version: "3" }), undefined);
    assert.equal(findImage(images, { name: "c" }), undefined);
  });

  it("takes the latest released_at for NAME alone, comparing instants across offsets", () => {
    const images = [
      image("a", "9", "2026-01-01T00:00:00Z"),
      image("a", "1", "2026-01-01T01:30:00+02:00"), // 2025-12-31T23:30Z: earlier
      image("a", "2", "2026-01-02T00:00:00Z"),
      image("a", "3"),
    ];
    assert.equal(findImage(images, { name: "a" })?.version, "2");
  });

  it("sorts entries without released_at earliest, ties by version part by part, then order", () => {
    assert.equal(
      findImage([image("a", "5"), image("a", "1", "2020-01-01T00:00:00Z")], { name: "a" })?.version,
      "1",
    );
    const t = "2026-03-30T02:37:06Z";
    const tied = [image("a", "0.0.9", t), image("a", "0.0.26", t), image("a", "0.0.10", t)];
    assert.equal(findImage(tied, { name: "a" })?.version, "0.0.26");
    const same = [image("a", "1.01", t), image("a", "1.1", t)];
    assert.equal(findImage(same, { name: "a" }), same[0]);
    assert.equal(findImage([image("a", "1"), image("a", "2")], { name: "a" })?.version, "2");
  });

  it("picks the newest version in the real v0.0.26 and v0.0.23-v0.0.25 files", () => {
    const images = ["v0.0.23.toml", "v0.0.24.toml", "v0.0.25.toml", "v0.0.26.toml"].flatMap(
      (f) => parseRegistry(fixture(f), f).images,
    );
    assert.equal(findImage(images, { name: "qemu_aarch64_linux" })?.version, "0.0.26");
    assert.equal(
      findImage(images.slice(0, -29), { name: "qemu_aarch64_linux" })?.version,
      "0.0.25",
    );
  });
});

describe("compareVersions", () => {
  it("compares digit runs as numbers of any length", () => {
    assert.ok(compareVersions("0.0.9", "0.0.26") < 0);
    assert.ok(compareVersions("1.10", "1.9") > 0);
    assert.ok(compareVersions("1.0", "1.0.1") < 0);
    assert.ok(compareVersions("99999999999999999999", "100000000000000000000") < 0);
    assert.equal(compareVersions("1.01", "1.1"), 0);
    assert.ok(compareVersions("1.0-rc1", "1.0-rc2") < 0);
  });
});

describe("suggest", () => {
  const images = [
    image("qemu_aarch64_linux", "1"),
    image("qemu_aarch64_linux", "2"),
    image("qemu_riscv64_linux", "1"),
    image("phytiumpi-freertos", "1"),
    image("orangepi_linux", "1"),
  ];

  it("offers close names, closest first, each once", () => {
    assert.deepEqual(suggest(images, "qemu_aarch64_linx"), ["qemu_aarch64_linux"]);
    assert.deepEqual(suggest(images, "phytiumpi_freertos"), ["phytiumpi-freertos"]);
    assert.deepEqual(suggest(images, "QEMU_AARCH64_LINUX"), ["qemu_aarch64_linux"]);
    assert.deepEqual(suggest(images, "riscv"), ["qemu_riscv64_linux"]);
  });

  it("offers nothing for unrelated names", () => {
    assert.deepEqual(suggest(images, "windows"), []);
  });
});

describe("ls and pull agree on the newest version", () => {
  const entry = (version: string, released_at?: string): ImageEntry => ({
    name: "img",
    version,
    description: "d",
    sha256: "0".repeat(64),
    arch: "aarch64",
    url: "https://example.invalid/img.tar.gz",
    ...(released_at ? { released_at } : {}),
  });
  for (const [label, images] of [
    ["a leap second", [entry("1.0", "2026-06-30T23:59:59Z"), entry("2.0", "2026-06-30T23:59:60Z")]],
    ["letters of different case", [entry("a"), entry("B")]],
    ["_ against -", [entry("1.0_2"), entry("1.0-2")]],
    ["numeric parts", [entry("0.0.26"), entry("0.0.9")]],
  ] as const) {
    it(label, () => {
      const listed = listImages([...images])[0]?.entry;
      assert.equal(listed, findImage(images, { name: "img" }));
    });
  }
});
