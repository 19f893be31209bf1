/** Format detection looks at the first bytes only. */

import assert from "node:assert/strict";
import { test } from "node:test";
import { gzipSync } from "node:zlib";
import { detectFormat } from "../../src/archive/detect.js";
import { member, tar } from "../helpers/tar.js";

test("magic bytes pick gzip, xz and zstd; anything else is plain tar", () => {
  assert.equal(detectFormat(gzipSync(Buffer.from("x"))), "gzip");
  assert.equal(detectFormat(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00, 0x00])), "xz");
  assert.equal(detectFormat(Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x24, 0x00])), "zstd");
  assert.equal(detectFormat(tar(member({ name: "a", data: "x" }))), "tar");
  assert.equal(detectFormat(Buffer.from("BZh91AY&SY")), "tar");
});

test("a prefix of a magic number is not that format", () => {
  assert.equal(detectFormat(Buffer.from([0x1f])), "tar");
  assert.equal(detectFormat(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a])), "tar");
  assert.equal(detectFormat(Buffer.alloc(0)), "tar");
});
