import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { UsageError } from "../../src/errors.js";
import { candidateUrls, parseMirrorFlag } from "../../src/config/mirrors.js";

describe("candidateUrls", () => {
  const url = "https://github.com/org/repo/releases/download/v1/img.tar.gz";

  it("lists every matching mirror in order, then the original", () => {
    const mirrors = [
      { prefix: "https://github.com/", replace: "https://m1.example/gh/" },
      { prefix: "https://example.org/", replace: "https://never.example/" },
      { prefix: "https://github.com/org/", replace: "file:///srv/org/" },
    ];
    assert.deepEqual(candidateUrls(url, mirrors), [
      "https://m1.example/gh/org/repo/releases/download/v1/img.tar.gz",
      "file:///srv/org/repo/releases/download/v1/img.tar.gz",
      url,
    ]);
  });

  it("is the original alone without a matching mirror, and lists a URL once", () => {
    assert.deepEqual(candidateUrls(url, []), [url]);
    const identity = [{ prefix: "https://github.com/", replace: "https://github.com/" }];
    assert.deepEqual(candidateUrls(url, identity), [url]);
  });
});

describe("parseMirrorFlag", () => {
  it("splits at the first '='", () => {
    assert.deepEqual(parseMirrorFlag("https://github.com/=https://m.example/?a=b&c="), {
      prefix: "https://github.com/",
      replace: "https://m.example/?a=b&c=",
    });
  });

  it("refuses a missing side with a UsageError naming the argument", () => {
    for (const bad of ["https://github.com/", "=https://m.example/", "https://github.com/="]) {
      assert.throws(
        () => parseMirrorFlag(bad),
        (err) => err instanceof UsageError && err.exitCode === 2 && err.message.includes(bad),
      );
    }
  });
});
