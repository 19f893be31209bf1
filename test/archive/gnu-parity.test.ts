/**
 * Unusual but legitimate archives extract as GNU tar extracts them: each archive is built here,
 * byte by byte or by GNU tar itself, extracted by GNU tar and by the extractor, and the two trees
 * compared. Where GNU tar rewrites a name we refuse instead (absolute paths), the message says so.
 */

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { describe, test } from "node:test";
import { AxError } from "../../src/errors.js";
import { member, oldGnuSparse, pad, pax, stretches, tar } from "../helpers/tar.js";
import { extractBuffer, sandbox } from "./sandbox.js";
import { gnuExtract, haveTool, treeDifferences } from "./trees.js";

const GNU = haveTool("tar");
const skip = GNU ? false : "GNU tar is not installed";

/**
 * Extracts `archive` with GNU tar and with the extractor, checks that GNU tar succeeded and that
 * both trees are the same; resolves with our warnings and the path of our tree.
 */
async function sameAsGnu(archive: Buffer, check?: (ours: string) => void): Promise<string[]> {
  const sb = await sandbox();
  try {
    const file = path.join(sb.root, "archive.tar");
    fs.writeFileSync(file, archive);
    const gnu = gnuExtract(file, path.join(sb.root, "gnu"));
    assert.equal(gnu.status, 0, `GNU tar failed: ${gnu.stderr}`);
    const warnings: string[] = [];
    await extractBuffer(archive, sb.dest, { onWarning: (message) => warnings.push(message) });
    assert.deepEqual(treeDifferences(sb.dest, path.join(sb.root, "gnu")), []);
    check?.(sb.dest);
    return warnings;
  } finally {
    await sb.cleanup();
  }
}

const file = (name: string | Buffer, data = "x", extra = {}): Buffer =>
  member({ name, data, ...extra });

/** A file of `size` bytes: zeros, with "abc" at 0 and "xyz" at 9000 (the research's cases). */
const ABC_XYZ = { realSize: 10_000, first: Buffer.from("abc"), second: Buffer.from("xyz") };

describe("archives GNU tar reads, read as GNU tar reads them", { skip }, () => {
  test("pre-POSIX v7 headers (no magic): as GNU tar --format=v7 writes them, and by hand", async () => {
    const sb = await sandbox();
    try {
      const src = path.join(sb.root, "src");
      fs.mkdirSync(path.join(src, "dir"), { recursive: true });
      fs.writeFileSync(path.join(src, "dir/file"), "v7 file\n");
      fs.symlinkSync("dir/file", path.join(src, "link"));
      fs.linkSync(path.join(src, "dir/file"), path.join(src, "hard"));
      const made = spawnSync("tar", ["--format=v7", "-cf", "-", "-C", src, "."]);
      assert.equal(made.status, 0, made.stderr.toString());
      assert.equal(made.stdout.subarray(257, 263).toString("latin1"), "\0".repeat(6), "no magic");
      await sameAsGnu(made.stdout);
    } finally {
      await sb.cleanup();
    }
    const v7 = { magic: "v7", type: "\0" } as const;
    await sameAsGnu(
      tar(
        member({ name: "v7dir/", ...v7 }), // a directory: v7 names them with a trailing slash
        file("v7dir/f", "F", v7),
        file("v7file", "V7", v7),
      ),
    );
  });

  test("numeric fields as other tars wrote them: base-256, blank-padded octal, signed checksums", async () => {
    const base256 = (value: number) => {
      const field = Buffer.alloc(12);
      field[0] = 0x80;
      field.writeUIntBE(value, 6, 6);
      return field;
    };
    const sunTar = member({ name: Buffer.from("\xe9t\xe9", "latin1"), data: "signed sum" });
    let signed = 0;
    for (const byte of sunTar.subarray(0, 512)) signed += byte >= 0x80 ? byte - 256 : byte;
    signed += 8 * 0x20 - [...sunTar.subarray(148, 156)].reduce((a, b) => a + b, 0);
    sunTar.write(`${signed.toString(8).padStart(6, "0")}\0 `, 148, "latin1");
    await sameAsGnu(
      tar(
        member({ name: "big-size-field", data: "hello", sizeField: base256(5) }),
        member({
          name: "blank-padded",
          data: "old tar",
          patch: [
            [100, Buffer.from("   644 \0")], // mode
            [124, Buffer.from("         7 ")], // size
          ],
        }),
        sunTar,
      ),
    );
  });

  test("a volume label (tar -V) names the archive, not a file: skipped, as GNU tar skips it", async () => {
    const sb = await sandbox();
    try {
      const src = path.join(sb.root, "src");
      fs.mkdirSync(src);
      fs.writeFileSync(path.join(src, "f"), "labelled\n");
      const made = spawnSync("tar", ["-V", "guest images 0.0.15", "-cf", "-", "-C", src, "."]);
      assert.equal(made.status, 0, made.stderr.toString());
      assert.equal(String.fromCharCode(made.stdout[156] ?? 0), "V");
      await sameAsGnu(made.stdout);
    } finally {
      await sb.cleanup();
    }
  });

  test("an empty member name is `.`, the target directory", async () => {
    await sameAsGnu(tar(member({ name: "", type: "5" }), file("f")));
    const sb = await sandbox();
    try {
      // GNU tar cannot write a file over `.` either ("Cannot open: File exists").
      await assert.rejects(extractBuffer(tar(file("")), sb.dest), /names the target directory/);
    } finally {
      await sb.cleanup();
    }
  });

  test("a pax global header's path applies to every member after it, until the next one", async () => {
    await sameAsGnu(tar(pax({ path: "global-name" }, "g"), file("a", "AAA"), file("b", "BBB")));
    await sameAsGnu(
      tar(
        pax({ path: "first" }, "g"),
        file("a", "AAA"),
        pax({ path: "local" }), // a member's own record wins over the global one
        file("b", "BBB"),
        pax({ comment: "no path any more" }, "g"), // a global header replaces the one before
        file("c", "CCC"),
      ),
      (ours) => assert.deepEqual(fs.readdirSync(ours).sort(), ["c", "first", "local"]),
    );
  });

  test("empty pax headers, local and global, change nothing", async () => {
    const emptyLocal = member({ name: "PaxHeaders/a", type: "x" });
    const emptyGlobal = member({ name: "pax_global_header", type: "g" });
    await sameAsGnu(tar(emptyLocal, file("a", "AAA"), emptyGlobal, file("b", "BBB")));
  });

  test("large pax records: a 6 MiB comment and a 70 KiB extended attribute, with a path", async () => {
    await sameAsGnu(
      tar(
        pax({
          comment: "z".repeat(6 * 1024 * 1024),
          "SCHILY.xattr.user.big": "v".repeat(70 * 1024),
          path: "from-pax",
        }),
        file("placeholder", "data"),
        file("after", "after"),
      ),
      (ours) => assert.deepEqual(fs.readdirSync(ours).sort(), ["after", "from-pax"]),
    );
  });

  test("a lone zero block ends the archive: nothing after it is extracted, with a warning", async () => {
    const zero = Buffer.alloc(512);
    for (const after of [Buffer.from("junk".repeat(128)), file("b", "BBB")]) {
      const warnings = await sameAsGnu(
        Buffer.concat([file("a", "AAA"), zero, after, file("c", "CCC"), Buffer.alloc(1024)]),
        (ours) => assert.deepEqual(fs.readdirSync(ours), ["a"]),
      );
      assert.deepEqual(warnings, [
        "a lone zero block at byte 1024 ends the archive, as GNU tar reads it: the data after it " +
          "was ignored",
      ]);
    }
  });

  test("names that are not UTF-8 keep their bytes: members differing only there stay apart", async () => {
    const latin1 = (text: string) => Buffer.from(text, "latin1");
    const archive = tar(
      file(latin1("caf\xe9"), "latin-1 e acute"),
      file(latin1("caf\xe8"), "latin-1 e grave"),
      file(Buffer.from("caf\u00e9"), "UTF-8 e acute"),
      member({ name: latin1("d\xff/"), type: "5" }),
      file(latin1("d\xff/bad\xfe\xfename"), "inside"),
      member({ name: latin1("link\xe9"), type: "2", linkname: latin1("caf\xe9") }),
      member({ name: "hard", type: "1", linkname: latin1("caf\xe8") }),
    );
    await sameAsGnu(archive, (ours) => {
      const names = fs.readdirSync(ours, { encoding: "buffer" }).map((n) => n.toString("latin1"));
      assert.equal(names.length, 6);
      assert.equal(fs.readFileSync(path.join(ours, "hard"), "utf8"), "latin-1 e grave");
    });
  });

  test("GNU sparse maps as GNU tar reads them: unsorted, without an end entry, long", async () => {
    const { realSize, first, second } = ABC_XYZ;
    const content = Buffer.alloc(realSize);
    first.copy(content, 0);
    second.copy(content, 9000);
    const padded = Buffer.concat([pad(first), second]);
    const map10 = (lines: string) => Buffer.concat([pad(Buffer.from(lines)), padded]);
    const sparse10 = (lines: string) =>
      tar(
        pax({
          "GNU.sparse.major": "1",
          "GNU.sparse.minor": "0",
          "GNU.sparse.name": "f",
          "GNU.sparse.realsize": String(realSize),
        }),
        member({ name: "GNUSparseFile.0/f", data: map10(lines) }),
      );
    // pax 1.0 without the (size, 0) end entry: the file ends with its data, at 9003 bytes
    await sameAsGnu(sparse10("2\n0\n3\n9000\n3\n"), (ours) => {
      assert.equal(fs.statSync(path.join(ours, "f")).size, 9003);
    });
    await sameAsGnu(sparse10("3\n0\n3\n9000\n3\n10000\n0\n"));
    // old GNU, unsorted map: written in map order
    await sameAsGnu(
      tar(
        oldGnuSparse({
          name: "f",
          realSize,
          map: [
            [9000, 3],
            [0, 3],
            [realSize, 0],
          ],
          content,
        }),
      ),
    );
    // old GNU with 30 stretches: 4 in the header, the rest in two extension blocks
    const long = stretches(30, 4096, 100, 20);
    await sameAsGnu(tar(oldGnuSparse({ name: "long", realSize: long.content.length, ...long })));
    // pax 0.0: repeated offset and numbytes records
    await sameAsGnu(
      tar(
        pax([
          ["GNU.sparse.size", String(realSize)],
          ["GNU.sparse.numblocks", "2"],
          ["GNU.sparse.offset", "0"],
          ["GNU.sparse.numbytes", "3"],
          ["GNU.sparse.offset", "9000"],
          ["GNU.sparse.numbytes", "3"],
        ]),
        member({ name: "f", data: padded }),
      ),
    );
  });

  test("a file of 60 stretches, packed by GNU tar -S in old GNU and pax 0.0, 0.1, 1.0 formats", async () => {
    const sb = await sandbox();
    try {
      const src = path.join(sb.root, "src");
      fs.mkdirSync(src);
      const fd = fs.openSync(path.join(src, "frag.img"), "w");
      fs.ftruncateSync(fd, 60 * 64 * 1024);
      for (let i = 0; i < 60; i++) fs.writeSync(fd, `region ${i}`, i * 64 * 1024 + i);
      fs.closeSync(fd);
      for (const options of [
        ["--format=gnu"],
        ...["0.0", "0.1", "1.0"].map((v) => ["--format=posix", `--sparse-version=${v}`]),
      ]) {
        const made = spawnSync("tar", [...options, "-cSf", "-", "-C", src, "frag.img"]);
        assert.equal(made.status, 0, made.stderr.toString());
        if (options[0] === "--format=gnu") assert.equal(made.stdout[156], "S".charCodeAt(0));
        await sameAsGnu(made.stdout);
      }
    } finally {
      await sb.cleanup();
    }
  });
});

describe("where GNU tar rewrites a member, the extractor refuses and says so", () => {
  test("an absolute member name is refused naming the member, the reason and the way out", async () => {
    for (const name of ["/abs/file", "////abs/file"]) {
      const sb = await sandbox();
      try {
        await assert.rejects(extractBuffer(tar(file(name, "ABS")), sb.dest), (err: unknown) => {
          assert.ok(err instanceof AxError);
          assert.equal(
            err.message,
            `refused archive member ${JSON.stringify(name)}: absolute path (GNU tar would ` +
              'strip the leading "/"; member names are never rewritten here)',
          );
          assert.match(err.hint ?? "", /absolute member names \(tar -P\).*relative names/);
          return true;
        });
      } finally {
        await sb.cleanup();
      }
    }
  });
});
