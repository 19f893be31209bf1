/**
 * One test per node-tar CVE: each builds the attack archive (plain and gzip), and checks that our
 * extractor refuses it, naming the member, with nothing changed outside the target directory
 * (or, for the denial-of-service ones, that it finishes with an error or a correct tree).
 */

import assert from "node:assert/strict";
import fs from "node:fs/promises";
import path from "node:path";
import { describe, test } from "node:test";
import { gnuLongName, member, pax, tar } from "../helpers/tar.js";
import { ENCODINGS, expectRefused, withExtracted } from "./sandbox.js";

for (const { name: encoding, encode } of ENCODINGS) {
  describe(`node-tar CVEs (${encoding})`, () => {
    test("CVE-2021-32803: a directory, then a symlink of the same name, then a file under it; refused at the symlink: a directory is never replaced", async () => {
      await expectRefused(
        encode(
          tar(
            member({ name: "d/", type: "5" }),
            member({ name: "d", type: "2", linkname: "../outside" }),
            member({ name: "d/pwned", data: "pwned" }),
          ),
        ),
        "d",
      );
    });

    test("CVE-2021-32804: '////abs/path' member names; refused: any absolute name is refused, not stripped", async () => {
      await expectRefused(
        (sb) => encode(tar(member({ name: `////${sb.outside}/pwned`, data: "pwned" }))),
        "////",
      );
    });

    test("CVE-2021-37701: dir FOO, symlink foo -> outside, file FOO/x (one name on case-insensitive file systems); refused: names are compared case-folded against symlinks", async () => {
      await expectRefused(
        encode(
          tar(
            member({ name: "FOO/", type: "5" }),
            member({ name: "foo", type: "2", linkname: "../outside" }),
            member({ name: "FOO/pwned", data: "pwned" }),
          ),
        ),
        "FOO/pwned",
      );
    });

    test("CVE-2021-37712: symlink 'é' (NFC) -> outside, then file 'é/x' (NFD), one name on APFS/HFS+; refused: names are compared NFKD-normalized", async () => {
      await expectRefused(
        encode(
          tar(
            member({ name: "\u00e9", type: "2", linkname: "../outside" }),
            member({ name: "e\u0301/pwned", data: "pwned" }),
          ),
        ),
        "e\u0301/pwned",
      );
    });

    test("CVE-2021-37713: drive-relative 'C:../x' names (Windows); refused: names with a drive prefix are refused on every platform", async () => {
      await expectRefused(
        encode(tar(member({ name: "C:../outside/pwned", data: "pwned" }))),
        "C:../outside/pwned",
      );
    });

    test("CVE-2024-28863: folders nested thousands deep exhaust memory; refused past 256 levels", async () => {
      const deep = `${"a/".repeat(300)}f`;
      const message = await expectRefused(
        encode(tar(pax({ path: deep }), member({ name: "placeholder", data: "x" }))),
        "a/a/a/a",
      );
      assert.match(message, /deeper than 256 levels/);
    });

    test("CVE-2026-23745: a hard link with an absolute target outside, then a file of its name; refused at the link: hard links may only point at earlier members", async () => {
      await expectRefused(
        (sb) =>
          encode(
            tar(
              member({ name: "h", type: "1", linkname: sb.victim }),
              member({ name: "h", data: "pwned" }),
            ),
          ),
        "h",
      );
    });

    test("CVE-2026-23745: a symlink with an absolute target outside, then a file through it; refused: extraction never follows a symlink", async () => {
      await expectRefused(
        (sb) =>
          encode(
            tar(
              member({ name: "l", type: "2", linkname: sb.outside }),
              member({ name: "l/victim.txt", data: "pwned" }),
            ),
          ),
        "l/victim.txt",
      );
    });

    test("CVE-2026-23950: symlink 'ß' -> outside, then file 'ss/x' (one name on APFS); refused: names are compared with full case folding (ß = ss)", async () => {
      await expectRefused(
        encode(
          tar(
            member({ name: "\u00df", type: "2", linkname: "../outside" }),
            member({ name: "ss/pwned", data: "pwned" }),
          ),
        ),
        "ss/pwned",
      );
    });

    test("CVE-2026-24842: a hard link whose target climbs out with '..' from a nested member; refused: '..' is refused in link targets too", async () => {
      await expectRefused(
        encode(
          tar(
            member({ name: "a/b/c/", type: "5" }),
            member({
              name: "a/b/c/h",
              type: "1",
              linkname: "a/b/c/../../../../outside/victim.txt",
            }),
          ),
        ),
        "a/b/c/h",
      );
    });

    test("CVE-2026-26960: a hard link whose target goes through a chain of symlinks (up -> ../.., escape -> c/up/../..); refused: a link target never passes through a symlink", async () => {
      await expectRefused(
        encode(
          tar(
            member({ name: "a/b/c/up", type: "2", linkname: "../.." }),
            member({ name: "a/b/escape", type: "2", linkname: "c/up/../.." }),
            member({ name: "exfil", type: "1", linkname: "a/b/escape/outside/victim.txt" }),
          ),
        ),
        "exfil",
      );
    });

    test("CVE-2026-29786: a hard link to a drive-relative target 'C:../x'; refused: drive prefixes are refused in link targets", async () => {
      await expectRefused(
        encode(tar(member({ name: "h", type: "1", linkname: "C:../outside/victim.txt" }))),
        "h",
      );
    });

    test("CVE-2026-31802: a symlink to a drive-relative target 'C:../..', then a file through it; refused, and the link keeps its target as written", async () => {
      const message = await expectRefused(
        encode(
          tar(
            member({ name: "l", type: "2", linkname: "C:../../outside" }),
            member({ name: "l/victim.txt", data: "pwned" }),
          ),
        ),
        "l/victim.txt",
      );
      assert.match(message, /symbolic link "l"/);
    });

    test("CVE-2026-59873: a decompression bomb (32 MiB of zeros in a few KiB); streamed with bounded memory, the zeros become a hole", async () => {
      const size = 32 * 1024 * 1024;
      const bomb = encode(tar(member({ name: "zeros", data: Buffer.alloc(size) })));
      assert.ok(bomb.length < size / 100 || encoding === "plain");
      await withExtracted(bomb, async (dest) => {
        const stat = await fs.stat(path.join(dest, "zeros"));
        assert.equal(stat.size, size);
        assert.ok(stat.blocks * 512 < size / 100, `not sparse: ${stat.blocks} blocks`);
      });
    });

    test("CVE-2026-59874: a checksum-valid header with a negative base-256 size; ends with an error naming that member instead of looping", async () => {
      const negative = Buffer.alloc(12, 0xff);
      negative[11] = 0x00;
      const message = await expectRefused(
        encode(
          tar(member({ name: "ok", data: "fine" }), member({ name: "neg", sizeField: negative })),
        ),
        "neg",
      );
      assert.match(message, /negative size/);
    });

    test("CVE-2026-59875: NUL bytes in a pax path reach file-system calls; refused: names with NUL are refused", async () => {
      await expectRefused(
        encode(tar(pax({ path: "a\u0000../../outside/pwned" }), member({ name: "x", data: "x" }))),
        "a\u0000",
      );
    });

    test("CVE-2026-53655: a pax size before a GNU long-name header desynchronizes parsing and hides members; the size applies to the real member and nothing is hidden", async () => {
      const longName = `long/${"n".repeat(120)}`;
      const archive = tar(
        pax({ size: "5" }),
        gnuLongName(longName),
        member({ name: "short", size: 0 }),
        Buffer.from("hello".padEnd(512, "\0")),
        member({ name: "next", data: "visible" }),
      );
      await withExtracted(encode(archive), async (dest) => {
        assert.equal(await fs.readFile(path.join(dest, longName), "utf8"), "hello");
        assert.equal(await fs.readFile(path.join(dest, "next"), "utf8"), "visible");
      });
    });
  });
}
