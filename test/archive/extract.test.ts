/**
 * Benign archives: what a rootfs or kernel archive holds comes out right (trees, links, long
 * names, modes, times, holes, sparse members), whatever the compression and whatever the file is
 * called; plus the extractor's life cycle (chunking, abort, signal, destination checks).
 */

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs/promises";
import path from "node:path";
import { describe, test } from "node:test";
import { gzipSync } from "node:zlib";
import { ArchiveExtractor, extractFile } from "../../src/archive/extract.js";
import { AbortedError, AxError } from "../../src/errors.js";
import { gnuLongName, member, oldGnuSparse, pad, pax, tar } from "../helpers/tar.js";
import { extractBuffer, sandbox, withExtracted } from "./sandbox.js";

const MTIME = 1_600_000_000;

function rootfs(): Buffer {
  return tar(
    member({ name: "./", type: "5" }),
    member({ name: "./bin/", type: "5", mtime: MTIME }),
    member({ name: "./bin/busybox", data: "#!busybox\n", mode: 0o755, mtime: MTIME }),
    member({ name: "./bin/sh", type: "2", linkname: "/usr/bin/busybox" }),
    member({ name: "./bin/ls", type: "2", linkname: "busybox" }),
    member({ name: "./etc/passwd", data: "root:x:0:0::/root:/bin/sh\n", mode: 0o600 }),
    member({ name: "./etc/hostname", type: "1", linkname: "./etc/passwd" }),
    member({ name: "./etc/empty", data: "" }),
    member({ name: "./lib", type: "2", linkname: "usr/lib" }),
    member({ name: "./deep/a/b/c/d/e/f/g/file", data: "deep" }),
    member({ name: "./contiguous", type: "7", data: "contiguous" }),
  );
}

/** `size` bytes that are zeros except for marker bytes at a few offsets. */
function holey(size: number, marks: number[]): Buffer {
  const data = Buffer.alloc(size);
  for (const offset of marks) data.write("DATA", offset);
  return data;
}

async function blocksOf(file: string): Promise<number> {
  return (await fs.stat(file)).blocks;
}

describe("benign archives", () => {
  for (const [encoding, encode] of [
    ["plain", (b: Buffer) => b],
    ["gzip", gzipSync],
  ] as const) {
    test(`a rootfs-like tree comes out right (${encoding})`, async () => {
      await withExtracted(encode(rootfs()), async (dest, stats) => {
        assert.deepEqual(stats, { files: 6, directories: 10, symlinks: 3, bytes: 50 });
        assert.equal(await fs.readlink(path.join(dest, "bin/sh")), "/usr/bin/busybox");
        assert.equal(await fs.readlink(path.join(dest, "bin/ls")), "busybox");
        assert.equal(await fs.readlink(path.join(dest, "lib")), "usr/lib");
        const busybox = await fs.stat(path.join(dest, "bin/busybox"));
        assert.equal(busybox.mode & 0o777, 0o755);
        assert.equal(busybox.mtimeMs, MTIME * 1000);
        assert.equal((await fs.stat(path.join(dest, "bin"))).mtimeMs, MTIME * 1000);
        const passwd = await fs.stat(path.join(dest, "etc/passwd"));
        assert.equal(passwd.mode & 0o777, 0o600);
        assert.equal(passwd.nlink, 2);
        assert.equal((await fs.stat(path.join(dest, "etc/hostname"))).ino, passwd.ino);
        assert.equal(await fs.readFile(path.join(dest, "etc/empty"), "utf8"), "");
        assert.equal(await fs.readFile(path.join(dest, "deep/a/b/c/d/e/f/g/file"), "utf8"), "deep");
        assert.equal(await fs.readFile(path.join(dest, "contiguous"), "utf8"), "contiguous");
      });
    });
  }

  test("every chunking of the input gives the same tree", async () => {
    for (const archive of [rootfs(), gzipSync(rootfs())]) {
      for (const chunkSize of [1, 7, 512, 4096]) {
        const sb = await sandbox();
        try {
          const stats = await extractBuffer(archive, sb.dest, {}, chunkSize);
          assert.equal(stats.files, 6);
          assert.equal(await fs.readFile(path.join(sb.dest, "bin/busybox"), "utf8"), "#!busybox\n");
        } finally {
          await sb.cleanup();
        }
      }
    }
  });

  test("pax and GNU long names and link targets work", async () => {
    const paxName = `${"p".repeat(200)}/${"q".repeat(200)}/file`;
    const gnuName = `${"g".repeat(150)}/file`;
    const target = `/opt/${"t".repeat(250)}`;
    const archive = tar(
      pax({ path: paxName }),
      member({ name: "placeholder", data: "pax" }),
      gnuLongName(gnuName),
      member({ name: "placeholder2", data: "gnu" }),
      pax({ linkpath: target }),
      member({ name: "link", type: "2", linkname: "placeholder" }),
      pax({ linkpath: paxName }),
      member({ name: "hard", type: "1", linkname: "placeholder" }),
      member({ name: `${"u".repeat(90)}/${"v".repeat(90)}`, data: "ustar prefix" }),
    );
    await withExtracted(archive, async (dest) => {
      assert.equal(await fs.readFile(path.join(dest, paxName), "utf8"), "pax");
      assert.equal(await fs.readFile(path.join(dest, gnuName), "utf8"), "gnu");
      assert.equal(await fs.readlink(path.join(dest, "link")), target);
      assert.equal(await fs.readFile(path.join(dest, "hard"), "utf8"), "pax");
      const prefixed = path.join(dest, "u".repeat(90), "v".repeat(90));
      assert.equal(await fs.readFile(prefixed, "utf8"), "ustar prefix");
    });
  });

  test("a repeated file replaces the earlier one (not through its hard link); a repeated directory is fine", async () => {
    const archive = tar(
      member({ name: "d/", type: "5", mode: 0o700 }),
      member({ name: "d/f", data: "first" }),
      member({ name: "d/h", type: "1", linkname: "d/f" }),
      member({ name: "d/f", data: "second", mode: 0o640 }),
      member({ name: "d/", type: "5", mode: 0o750 }),
      member({ name: "d/s", type: "2", linkname: "f" }),
      member({ name: "d/s2", data: "plain file" }),
      member({ name: "d/s2", type: "2", linkname: "f" }),
    );
    await withExtracted(archive, async (dest, stats) => {
      assert.equal(await fs.readFile(path.join(dest, "d/f"), "utf8"), "second");
      assert.equal((await fs.stat(path.join(dest, "d/f"))).mode & 0o777, 0o640);
      assert.equal(await fs.readFile(path.join(dest, "d/h"), "utf8"), "first");
      assert.equal((await fs.stat(path.join(dest, "d"))).mode & 0o777, 0o750);
      assert.equal(await fs.readlink(path.join(dest, "d/s2")), "f");
      assert.deepEqual(stats, { files: 2, directories: 1, symlinks: 2, bytes: 21 });
    });
  });

  test("modes are applied exactly, whatever the umask; pax mtimes keep their fraction", async () => {
    const archive = tar(
      member({ name: "open", data: "x", mode: 0o666 }),
      member({ name: "private/", type: "5", mode: 0o500 }),
      pax({ mtime: "1600000000.5" }),
      member({ name: "fraction", data: "x" }),
    );
    await withExtracted(archive, async (dest) => {
      assert.equal((await fs.stat(path.join(dest, "open"))).mode & 0o777, 0o666);
      // Directories keep owner rwx so that the tree can always be removed.
      assert.equal((await fs.stat(path.join(dest, "private"))).mode & 0o777, 0o700);
      assert.equal((await fs.stat(path.join(dest, "fraction"))).mtimeMs, 1_600_000_000_500);
    });
  });

  test("zero blocks become holes: the file's blocks take less than its size", async () => {
    const size = 3 * 1024 * 1024 + 100;
    const big = holey(size, [0, 1_500_000, size - 10]);
    const small = Buffer.alloc(512 * 1024);
    const archive = tar(
      member({ name: "big.img", data: big }),
      member({ name: "small", data: small }),
    );
    await withExtracted(gzipSync(archive), async (dest) => {
      assert.ok((await fs.readFile(path.join(dest, "big.img"))).equals(big));
      assert.ok((await blocksOf(path.join(dest, "big.img"))) * 512 < size / 4);
      assert.equal((await fs.stat(path.join(dest, "small"))).size, small.length);
      assert.equal(await blocksOf(path.join(dest, "small")), 0);
    });
  });

  test("GNU sparse members (pax 1.0, 0.1, 0.0 and old GNU) come out as sparse files", async () => {
    const realSize = 2 * 1024 * 1024;
    const expected = Buffer.alloc(realSize);
    expected.write("abcd", 0);
    expected.write("xyz", 1024 * 1024);
    // As GNU tar stores them: each stretch on a 512-byte boundary, a (size, 0) entry at the end.
    const data = Buffer.concat([pad(Buffer.from("abcd")), Buffer.from("xyz")]);
    const map = Buffer.from(`3\n0\n4\n1048576\n3\n${realSize}\n0\n`.padEnd(512, "\0"));
    const archive = tar(
      pax({
        "GNU.sparse.major": "1",
        "GNU.sparse.minor": "0",
        "GNU.sparse.name": "sparse-1.0",
        "GNU.sparse.realsize": String(realSize),
      }),
      member({ name: "GNUSparseFile.0/sparse-1.0", data: Buffer.concat([map, data]) }),
      pax({
        "GNU.sparse.map": `0,4,1048576,3,${realSize},0`,
        "GNU.sparse.size": String(realSize),
        "GNU.sparse.name": "sparse-0.1",
      }),
      member({ name: "GNUSparseFile.0/sparse-0.1", data }),
      pax([
        ["GNU.sparse.size", String(realSize)],
        ["GNU.sparse.numblocks", "3"],
        ["GNU.sparse.offset", "0"],
        ["GNU.sparse.numbytes", "4"],
        ["GNU.sparse.offset", "1048576"],
        ["GNU.sparse.numbytes", "3"],
        ["GNU.sparse.offset", String(realSize)],
        ["GNU.sparse.numbytes", "0"],
      ]),
      member({ name: "sparse-0.0", data }),
      oldGnuSparse({
        name: "sparse-S",
        realSize,
        map: [
          [0, 4],
          [1024 * 1024, 3],
          [realSize, 0],
        ],
        content: expected,
      }),
    );
    await withExtracted(archive, async (dest) => {
      const names = ["sparse-0.0", "sparse-0.1", "sparse-1.0", "sparse-S"];
      for (const name of names) {
        assert.ok((await fs.readFile(path.join(dest, name))).equals(expected), name);
        assert.ok((await blocksOf(path.join(dest, name))) * 512 < realSize / 4, name);
      }
      assert.deepEqual((await fs.readdir(dest)).sort(), names);
    });
  });

  test("GNU tar's own sparse archives extract with holes, in pax and in its default format", async (t) => {
    if (spawnSync("tar", ["--version"]).status !== 0) return t.skip("GNU tar is not installed");
    const sb = await sandbox();
    try {
      const source = path.join(sb.root, "src");
      await fs.mkdir(source);
      // A really sparse source file, so that tar --sparse stores it as a sparse member.
      const content = holey(8 * 1024 * 1024, [4096, 5 * 1024 * 1024]);
      const image = await fs.open(path.join(source, "disk.img"), "w");
      await image.truncate(content.length);
      await image.write(content, 4096, 4, 4096);
      await image.write(content, 5 * 1024 * 1024, 4, 5 * 1024 * 1024);
      await image.close();
      for (const format of ["posix", "gnu"]) {
        const archive = path.join(sb.root, `${format}.tar`);
        const made = spawnSync("tar", [
          "--sparse",
          `--format=${format}`,
          "-cf",
          archive,
          "-C",
          source,
          ".",
        ]);
        assert.equal(made.status, 0, made.stderr.toString());
        const dest = path.join(sb.root, `out-${format}`);
        await extractFile(archive, dest);
        assert.ok((await fs.readFile(path.join(dest, "disk.img"))).equals(content), format);
        assert.ok((await blocksOf(path.join(dest, "disk.img"))) * 512 < content.length / 4, format);
      }
    } finally {
      await sb.cleanup();
    }
  });
});

describe("format detection by content", () => {
  const archive = tar(member({ name: "hello.txt", data: "hello from the archive\n" }));
  const compressors: [string, string, (data: Buffer) => Buffer | undefined][] = [
    ["plain tar", "image.tar.zst", (data) => data],
    ["gzip", "image.tar.xz", (data) => gzipSync(data)],
    ["xz", "image.tar.gz", (data) => run("xz", ["-c"], data)],
    ["zstd", "image.tgz", (data) => run("zstd", ["-c", "-q"], data)],
  ];

  function run(command: string, args: string[], input: Buffer): Buffer | undefined {
    const result = spawnSync(command, args, { input });
    return result.status === 0 ? result.stdout : undefined;
  }

  for (const [format, misleadingName, compress] of compressors) {
    test(`${format} is recognized even when named ${misleadingName}`, async (t) => {
      const bytes = compress(archive);
      if (!bytes) return t.skip(`no ${format} compressor here`);
      const sb = await sandbox();
      try {
        const file = path.join(sb.root, misleadingName);
        await fs.writeFile(file, bytes);
        const stats = await extractFile(file, sb.dest);
        assert.equal(stats.files, 1);
        const text = await fs.readFile(path.join(sb.dest, "hello.txt"), "utf8");
        assert.equal(text, "hello from the archive\n");
      } finally {
        await sb.cleanup();
      }
    });
  }

  test("a corrupt xz stream is an AxError naming xz", async (t) => {
    const bytes = run("xz", ["-c"], archive);
    if (!bytes) return t.skip("no xz here");
    bytes[8] = (bytes[8] ?? 0) ^ 0xff; // the stream header's CRC32: xz fails before any output
    const sb = await sandbox();
    try {
      await assert.rejects(extractBuffer(bytes, sb.dest), (err: unknown) => {
        assert.ok(err instanceof AxError);
        assert.match(err.message, /xz data is corrupt/);
        return true;
      });
    } finally {
      await sb.cleanup();
    }
  });

  test("an xz archive without the xz program is a clear AxError", async () => {
    // Header of an empty xz stream: enough to be detected, not enough to need the program.
    const xzHead = Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00, 0x00, 0x04]);
    const sb = await sandbox();
    const savedPath = process.env.PATH;
    process.env.PATH = sb.outside; // holds no programs
    try {
      await assert.rejects(extractBuffer(xzHead, sb.dest), (err: unknown) => {
        assert.ok(err instanceof AxError);
        assert.match(err.message, /xz-compressed, but `xz` is not installed/);
        assert.match(err.hint ?? "", /xz-utils/);
        return true;
      });
    } finally {
      process.env.PATH = savedPath;
      await sb.cleanup();
    }
  });
});

describe("extractor life cycle", () => {
  test("the destination must be new or an empty directory", async () => {
    const sb = await sandbox();
    try {
      await fs.mkdir(sb.dest);
      await fs.writeFile(path.join(sb.dest, "stray"), "x");
      await assert.rejects(extractBuffer(rootfs(), sb.dest), /not an empty directory/);
      await fs.rm(path.join(sb.dest, "stray"));
      const stats = await extractBuffer(rootfs(), sb.dest);
      assert.equal(stats.symlinks, 3);
    } finally {
      await sb.cleanup();
    }
  });

  test("abort() stops the extraction; later calls reject with AbortedError", async () => {
    const sb = await sandbox();
    try {
      const archive = gzipSync(tar(member({ name: "big", data: holey(4 * 1024 * 1024, [0]) })));
      const extractor = new ArchiveExtractor(sb.dest);
      await extractor.write(archive.subarray(0, 100));
      await extractor.abort();
      await assert.rejects(extractor.write(archive.subarray(100)), AbortedError);
      await assert.rejects(extractor.end(), AbortedError);
      await extractor.abort(); // never throws, also twice
    } finally {
      await sb.cleanup();
    }
  });

  test("an AbortSignal stops a pending extraction", async () => {
    const sb = await sandbox();
    try {
      const controller = new AbortController();
      const extractor = new ArchiveExtractor(sb.dest, { signal: controller.signal });
      await extractor.write(rootfs().subarray(0, 1024));
      controller.abort();
      await assert.rejects(extractor.write(rootfs().subarray(1024)), AbortedError);
      await extractor.abort();
    } finally {
      await sb.cleanup();
    }
  });

  test("write() is done with its chunk when it resolves: one reused input buffer gives the same tree", async (t) => {
    // The download feeds the extractor from one batch buffer it overwrites after each write().
    let seed = 7;
    const text = Buffer.alloc(1536 * 1024); // > 1 MiB: streamed through the HoleWriter
    for (let i = 0; i < text.length; i++) {
      seed = (seed * 1103515245 + 12345) >>> 0;
      text[i] = i % 3 === 0 ? 0 : 32 + (seed >>> 25);
    }
    const small = text.subarray(1000, 40_000);
    const archive = tar(
      member({ name: "big.bin", data: text }),
      ...Array.from({ length: 20 }, (_, i) =>
        member({ name: `dir/small-${i}`, data: small.subarray(i * 500) }),
      ),
    );
    const run = (command: string, args: string[]) => {
      const result = spawnSync(command, args, { input: archive, maxBuffer: 1 << 26 });
      return result.status === 0 ? result.stdout : undefined;
    };
    const encodings: [string, Buffer | undefined][] = [
      ["plain", archive],
      ["gzip", gzipSync(archive)],
      ["xz", run("xz", ["-c", "-T1"])],
      ["zstd", run("zstd", ["-c", "-q"])],
    ];
    for (const [format, bytes] of encodings) {
      if (!bytes) {
        t.diagnostic(`no ${format} compressor here: skipped`);
        continue;
      }
      for (const chunkSize of [4000, 300_000]) {
        const sb = await sandbox();
        try {
          const extractor = new ArchiveExtractor(sb.dest);
          const lent = Buffer.alloc(chunkSize);
          // 3 bytes first: too few to tell the format, kept until more come.
          for (let offset = 0, n = 3; offset < bytes.length; offset += n, n = chunkSize) {
            const length = bytes.copy(lent, 0, offset, offset + n);
            await extractor.write(lent.subarray(0, length));
            lent.fill(0xaa); // what the next batch would do to a chunk still in use
          }
          await extractor.end();
          const what = `${format}, chunks of ${chunkSize}`;
          assert.ok(text.equals(await fs.readFile(path.join(sb.dest, "big.bin"))), what);
          for (let i = 0; i < 20; i++) {
            const got = await fs.readFile(path.join(sb.dest, `dir/small-${i}`));
            assert.ok(small.subarray(i * 500).equals(got), `${what}: small-${i}`);
          }
        } finally {
          await sb.cleanup();
        }
      }
    }
  });

  test("extractFile names a missing archive file", async () => {
    const sb = await sandbox();
    try {
      const missing = path.join(sb.root, "missing.tar.gz");
      await assert.rejects(extractFile(missing, sb.dest), (err: unknown) => {
        assert.ok(err instanceof AxError);
        assert.ok(err.message.includes(missing), err.message);
        return true;
      });
    } finally {
      await sb.cleanup();
    }
  });
});
