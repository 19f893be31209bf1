/**
 * Hostile archives, one class per test, each plain and gzip: the extractor refuses them with an
 * AxError naming the member and writes nothing outside the target directory; or, for what it only
 * skips or neutralizes (devices, setuid bits, owners), never lets them take effect.
 */

import assert from "node:assert/strict";
import fs from "node:fs/promises";
import path from "node:path";
import { describe, test } from "node:test";
import { gzipSync } from "node:zlib";
import { member, pax, tar } from "../helpers/tar.js";
import { ENCODINGS, expectRefused, withExtracted } from "./sandbox.js";

const file = (name: string, data = "pwned"): Buffer => member({ name, data });
const symlink = (name: string, linkname: string): Buffer => member({ name, type: "2", linkname });
const hardlink = (name: string, linkname: string): Buffer => member({ name, type: "1", linkname });
const dir = (name: string, mode?: number): Buffer => member({ name, type: "5", mode });

for (const { name: encoding, encode } of ENCODINGS) {
  describe(`hostile archives (${encoding})`, () => {
    test("absolute member paths are refused", async () => {
      await expectRefused((sb) => encode(tar(file(`${sb.outside}/pwned`))), "/");
      await expectRefused(encode(tar(pax({ path: "/etc/passwd" }), file("x"))), "/etc/passwd");
    });

    test("'..' components are refused, even when they would stay inside", async () => {
      await expectRefused(encode(tar(file("a/../../outside/pwned"))), "a/../../outside/pwned");
      await expectRefused(encode(tar(file("a/../b"))), "a/../b");
      await expectRefused(encode(tar(symlink("ok", "x"), file("../outside/pwned"))), "../outside");
    });

    test("hard links must point at an earlier regular file of the archive", async () => {
      await expectRefused(encode(tar(hardlink("h", "missing"))), "h");
      await expectRefused(encode(tar(hardlink("h", "later"), file("later"))), "h");
      await expectRefused(encode(tar(dir("d/"), hardlink("h", "d"))), "h");
      await expectRefused(
        encode(tar(symlink("s", "../outside/victim.txt"), hardlink("h", "s"))),
        "h",
      );
      await expectRefused(encode(tar(hardlink("h", "../outside/victim.txt"))), "h");
    });

    test("a directory is never replaced by a link", async () => {
      await expectRefused(encode(tar(dir("d/"), symlink("d", "../outside"), file("d/x"))), "d");
      await expectRefused(encode(tar(file("d/x", "ok"), symlink("d", "../outside"))), "d");
    });

    test("a file is never written through a symlink of the same name", async () => {
      const message = await expectRefused(
        encode(tar(symlink("victim", "../outside/victim.txt"), file("victim"))),
        "victim",
      );
      assert.match(message, /symbolic link "victim"/);
      await expectRefused(
        encode(tar(file("x"), symlink("victim", "../outside/victim.txt"), hardlink("victim", "x"))),
        "victim",
      );
      await expectRefused(encode(tar(symlink("d", "../outside"), dir("d/"))), "d");
    });

    test("nothing is written under a symlink, even one pointing inside", async () => {
      await expectRefused(encode(tar(symlink("l", "../outside"), file("l/pwned"))), "l/pwned");
      await expectRefused(encode(tar(dir("real/"), symlink("l", "real"), file("l/x"))), "l/x");
      await expectRefused(
        encode(tar(symlink("l", "."), symlink("l/l2", "../outside"), file("l/l2/x"))),
        "l/l2",
      );
    });

    test("names that collide after case folding or Unicode normalization cannot reach a symlink", async () => {
      const pairs: [string, string][] = [
        ["Dir", "dIR"], // case
        ["\u00c5", "A\u030a"], // NFC vs NFD
        ["\u212b", "\u00e5"], // Angstrom sign vs å
        ["\ufb01le", "file"], // ligature vs letters (NFKD)
        ["\u212aelvin", "kelvin"], // Kelvin sign
        ["stra\u00dfe", "STRASSE"], // ß vs SS
        ["\u1e9e", "ss"], // capital sharp s vs ss
        ["g\u200cit", "git"], // zero-width non-joiner, ignored by HFS+
      ];
      for (const [linkName, otherName] of pairs) {
        await expectRefused(
          encode(tar(symlink(linkName, "../outside"), file(`${otherName}/pwned`))),
          `${otherName}/pwned`,
        );
      }
    });

    test("path length, depth and component length are bounded", async () => {
      await expectRefused(encode(tar(pax({ path: `a/${"n".repeat(256)}` }), file("x"))), "a/nnn");
      const long = `${"d".repeat(200)}/`.repeat(21);
      await expectRefused(encode(tar(pax({ path: long }), file("x"))), "ddd");
      await expectRefused(encode(tar(pax({ path: "a/".repeat(257) }), file("x"))), "a/a/a");
      await expectRefused(encode(tar(pax({ linkpath: "t".repeat(4097) }), symlink("s", "x"))), "s");
    });

    test("NUL bytes and empty names are refused", async () => {
      await expectRefused(encode(tar(pax({ path: "a\u0000b" }), file("x"))), "a\u0000b");
      await expectRefused(
        encode(tar(symlink("s", "x"), pax({ linkpath: "t\u0000" }), symlink("s2", "y"))),
        "s2",
      );
    });

    test("unsupported member types are refused, not dropped: old GNU sparse 'S', volume label 'V'", async () => {
      const message = await expectRefused(
        encode(tar(member({ name: "sparse.img", type: "S", data: "abc" }))),
        "sparse.img",
      );
      assert.match(message, /unsupported member type/);
      await expectRefused(encode(tar(member({ name: "label", type: "V" }))), "label");
    });

    test("a directory member carrying data is refused (it would desynchronize parsing)", async () => {
      await expectRefused(
        encode(tar(member({ name: "d/", type: "5", data: file("hidden") }))),
        "d/",
      );
    });

    test("an unsupported pax sparse format (0.0) is refused", async () => {
      await expectRefused(
        encode(
          tar(
            pax({
              "GNU.sparse.size": "10",
              "GNU.sparse.numblocks": "1",
              "GNU.sparse.offset": "0",
              "GNU.sparse.numbytes": "3",
            }),
            file("s", "abc"),
          ),
        ),
        "s",
      );
    });

    test("a corrupt sparse map is refused", async () => {
      const records = {
        "GNU.sparse.major": "1",
        "GNU.sparse.minor": "0",
        "GNU.sparse.name": "s",
        "GNU.sparse.realsize": "4",
      };
      const map = Buffer.from("1\n0\n9\n".padEnd(512, "\0")); // 9 bytes of data in a 4-byte file
      await expectRefused(
        encode(
          tar(
            pax(records),
            member({
              name: "GNUSparseFile.0/s",
              data: Buffer.concat([map, Buffer.from("123456789")]),
            }),
          ),
        ),
        "s",
      );
    });

    test("a header with a bad checksum ends the extraction, naming the last good member", async () => {
      const message = await expectRefused(
        encode(tar(file("good", "ok"), member({ name: "bad", data: "x", badChecksum: true }))),
        "good",
      );
      assert.match(message, /corrupt tar archive after member "good"/);
    });

    test("an absurd member size ends as a truncated archive", async () => {
      const message = await expectRefused(
        encode(tar(file("good", "ok"), member({ name: "huge", size: 2 ** 40, data: "abc" }))),
        "huge",
      );
      assert.match(message, /truncated/);
    });

    test(
      "sizes the parser reads as -0 or null are refused, not taken for an empty member",
      { timeout: 30_000 }, // a null size used to hang the member loop
      async () => {
        const field = (...bytes: number[]) => Buffer.concat([Buffer.from(bytes), Buffer.alloc(12)]);
        for (const [archive, problem] of [
          // base-256, negative: -1 in two's complement (tar-stream reads -0)
          [tar(member({ name: "neg", sizeField: Buffer.alloc(12, 0xff) })), "negative size"],
          // base-256 with a first byte that is neither 0x80 nor 0xff (tar-stream reads null)
          [tar(member({ name: "neg", sizeField: field(0x81) })), "unparsable size field"],
          [tar(pax({ size: "-0" }), member({ name: "neg" })), "negative size"],
        ] as const) {
          const message = await expectRefused(
            encode(Buffer.concat([file("before", "ok"), archive, file("after", "x")])),
            "neg",
          );
          assert.match(message, new RegExp(`"neg": ${problem}$`));
        }
      },
    );

    test("a truncated archive is an error", async () => {
      const whole = tar(file("a", "x".repeat(2000)));
      const message = await expectRefused(encode(whole.subarray(0, 1200)), "a");
      assert.match(message, /truncated/);
    });

    test("device nodes and FIFOs are skipped with a warning, never created", async () => {
      const warnings: string[] = [];
      const archive = tar(
        member({ name: "dev/null", type: "3" }),
        member({ name: "dev/sda", type: "4" }),
        member({ name: "fifo", type: "6" }),
        file("after", "ok"),
      );
      await withExtracted(
        encode(archive),
        async (dest) => {
          assert.deepEqual((await fs.readdir(dest)).sort(), ["after"]);
          assert.equal(warnings.length, 3);
          assert.match(warnings[0] ?? "", /dev\/null/);
        },
        { onWarning: (message) => warnings.push(message) },
      );
    });

    test("setuid, setgid and sticky bits are dropped; owners are never restored", async () => {
      const archive = tar(
        member({ name: "suid", data: "x", mode: 0o6755, uid: 4321, gid: 4321 }),
        member({ name: "big-suid", data: Buffer.alloc(2 * 1024 * 1024, 1), mode: 0o4755 }),
        member({ name: "sticky/", type: "5", mode: 0o1777, uid: 4321 }),
      );
      await withExtracted(encode(archive), async (dest) => {
        const suid = await fs.stat(path.join(dest, "suid"));
        assert.equal(suid.mode & 0o7777, 0o755);
        assert.equal(suid.uid, process.getuid?.());
        assert.equal((await fs.stat(path.join(dest, "big-suid"))).mode & 0o7777, 0o755);
        const sticky = await fs.stat(path.join(dest, "sticky"));
        assert.equal(sticky.mode & 0o7777, 0o777);
        assert.equal(sticky.uid, process.getuid?.());
      });
    });
  });
}

describe("corrupt compressed data", () => {
  test("a corrupt gzip stream is an AxError about gzip", async () => {
    const archive = gzipSync(tar(file("a", "x".repeat(100_000))));
    archive[10] = 0xff; // first deflate block: final, reserved type
    const message = await expectRefused(archive);
    assert.match(message, /gzip data is corrupt/);
  });

  test("a truncated gzip stream is an error", async () => {
    const archive = gzipSync(tar(file("a", "some data")));
    const message = await expectRefused(archive.subarray(0, archive.length - 10));
    assert.match(message, /gzip|truncated/);
  });

  test("data that is no archive at all is refused", async () => {
    const message = await expectRefused(Buffer.from("hello, this is not a tar file".repeat(40)));
    assert.match(message, /not a tar archive/);
  });

  test("an empty archive is refused", async () => {
    assert.match(await expectRefused(Buffer.alloc(0)), /empty/);
  });
});
