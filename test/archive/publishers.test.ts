/**
 * Archives as publishers make them: a small rootfs-like tree (directories, modes, symbolic and hard
 * links, a long name, a UTF-8 name, two sparse images) packed here by the tools people use, GNU tar
 * in each format with and without --sparse, bsdtar, busybox tar and Python's tarfile, each archive
 * compressed by gzip, pigz, `xz -T0` and zstd; every one must extract to exactly the tree GNU tar
 * extracts from it, holes included.
 */

import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { extractFile } from "../../src/archive/extract.js";
import { gnuExtract, haveTool, treeDifferences } from "./trees.js";

const MiB = 1024 * 1024;

/** Writes `size` bytes of holes with `regions` of data (offset, bytes) into `file`. */
function sparseFile(file: string, size: number, regions: [number, Buffer][]): void {
  const fd = fs.openSync(file, "w");
  try {
    fs.ftruncateSync(fd, size);
    for (const [offset, data] of regions) fs.writeSync(fd, data, 0, data.length, offset);
  } finally {
    fs.closeSync(fd);
  }
}

/** Deterministic bytes that do not compress to nothing. */
function noise(length: number, seed: number): Buffer {
  const data = Buffer.alloc(length);
  let x = seed;
  for (let i = 0; i < length; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    data[i] = x >>> 24;
  }
  return data;
}

/** The source tree every tool packs. */
function makeTree(root: string): void {
  const at = (...names: string[]) => path.join(root, ...names);
  for (const dir of ["bin", "etc", "deep/a/b", "private"])
    fs.mkdirSync(at(dir), { recursive: true });
  fs.writeFileSync(at("bin/busybox"), Buffer.concat([Buffer.from("#!busybox\n"), noise(3000, 1)]));
  fs.chmodSync(at("bin/busybox"), 0o755);
  fs.symlinkSync("busybox", at("bin/sh"));
  fs.symlinkSync("/usr/bin/busybox", at("bin/env"));
  fs.writeFileSync(at("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n");
  fs.linkSync(at("etc/passwd"), at("etc/hostname"));
  fs.writeFileSync(at("etc/shadow"), "root:*:19000::::::\n", { mode: 0o600 });
  fs.chmodSync(at("etc/shadow"), 0o600);
  fs.writeFileSync(at("etc/empty"), "");
  fs.chmodSync(at("private"), 0o750);
  // 108 bytes with "./": a GNU long name, a ustar prefix, a pax path
  fs.writeFileSync(at("deep/a/b", `${"n".repeat(95)}.txt`), "long name\n");
  fs.writeFileSync(at("caf\u00e9.txt"), "utf-8 name\n");
  sparseFile(at("disk.img"), MiB + 512 * 1024, [
    [0, noise(4096, 2)],
    [512 * 1024 + 123, Buffer.from("unaligned")],
    [MiB, noise(64 * 1024, 3)],
    [MiB + 512 * 1024 - 4, Buffer.from("TAIL")],
  ]);
  sparseFile(at("hole-at-end.img"), 256 * 1024, [[0, Buffer.from("only at the start")]]);
}

const PYTHON_PACK = `
import sys, tarfile
with tarfile.open(sys.argv[1], "w", format=getattr(tarfile, sys.argv[2])) as archive:
    archive.add(sys.argv[3], arcname=".")
`;

/** A way to pack the tree: its label, the tool it needs, and the command (`OUT` and `SRC`). */
const PACKERS: [string, string, (out: string, src: string) => string[]][] = [
  ...["gnu", "oldgnu", "ustar", "posix"].flatMap(
    (format): [string, string, (o: string, s: string) => string[]][] => [
      [
        `GNU tar --format=${format}`,
        "tar",
        (o, s) => ["tar", `--format=${format}`, "-cf", o, "-C", s, "."],
      ],
      ...(format === "ustar"
        ? [] // GNU tar: "GNU features wanted on incompatible archive format"
        : ([
            [
              `GNU tar --format=${format} --sparse`,
              "tar",
              (o: string, s: string) => [
                "tar",
                `--format=${format}`,
                "--sparse",
                "-cf",
                o,
                "-C",
                s,
                ".",
              ],
            ],
          ] as [string, string, (o: string, s: string) => string[]][])),
    ],
  ),
  ...["0.0", "0.1", "1.0"].map((version): [string, string, (o: string, s: string) => string[]] => [
    `GNU tar --format=posix --sparse --sparse-version=${version}`,
    "tar",
    (o, s) => [
      "tar",
      "--format=posix",
      "--sparse",
      `--sparse-version=${version}`,
      "-cf",
      o,
      "-C",
      s,
      ".",
    ],
  ]),
  ["GNU tar -cS (its default format)", "tar", (o, s) => ["tar", "-cSf", o, "-C", s, "."]],
  ["bsdtar", "bsdtar", (o, s) => ["bsdtar", "-cf", o, "-C", s, "."]],
  ...["pax", "gnutar", "ustar"].map(
    (format): [string, string, (o: string, s: string) => string[]] => [
      `bsdtar --format ${format}`,
      "bsdtar",
      (o, s) => ["bsdtar", "--format", format, "-cf", o, "-C", s, "."],
    ],
  ),
  ["busybox tar", "busybox", (o, s) => ["busybox", "tar", "-cf", o, "-C", s, "."]],
  ...["PAX_FORMAT", "GNU_FORMAT", "USTAR_FORMAT"].map(
    (format): [string, string, (o: string, s: string) => string[]] => [
      `Python tarfile ${format}`,
      "python3",
      (o, s) => ["python3", "-c", PYTHON_PACK, o, format, s],
    ],
  ),
];

const COMPRESSORS: [string, string[]][] = [
  ["gzip", ["gzip", "-c"]],
  ["pigz", ["pigz", "-c"]],
  ["xz -T0", ["xz", "-T0", "-c"]],
  ["zstd", ["zstd", "-c", "-q"]],
];

function run(command: string[]): void {
  const [program, ...args] = command as [string, ...string[]];
  const result = spawnSync(program, args);
  assert.equal(result.status, 0, `${command.join(" ")}: ${result.stderr.toString()}`);
}

/** Runs `command` with `input` on its stdin; resolves with its stdout. */
function filter(command: string[], input: Buffer): Promise<Buffer> {
  const [program, ...args] = command as [string, ...string[]];
  const child = spawn(program, args, { stdio: ["pipe", "pipe", "inherit"] });
  const output: Buffer[] = [];
  child.stdout.on("data", (chunk: Buffer) => output.push(chunk));
  child.stdin.end(input);
  return new Promise((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code) => {
      if (code === 0) resolve(Buffer.concat(output));
      else reject(new Error(`${command.join(" ")} exited with ${code}`));
    });
  });
}

const tools = new Map<string, boolean>();
/** {@link haveTool}, asked once per tool. */
function installed(tool: string): boolean {
  if (!tools.has(tool)) tools.set(tool, haveTool(tool));
  return tools.get(tool) as boolean;
}

describe("archives as publishers make them extract as GNU tar extracts them", () => {
  let root: string;
  before(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), "axvisor-publishers-"));
    makeTree(path.join(root, "src"));
  });
  after(() => fs.rmSync(root, { recursive: true, force: true }));

  PACKERS.forEach(([label, tool, pack], index) => {
    test(label, async (t) => {
      if (!installed("tar")) return t.skip("GNU tar is not installed");
      if (!installed(tool)) return t.skip(`${tool} is not installed (.ci/run installs it)`);
      const dir = path.join(root, `packer-${index}`);
      fs.mkdirSync(dir);
      const archive = path.join(dir, "archive.tar");
      run(pack(archive, path.join(root, "src")));
      const reference = path.join(dir, "gnu");
      const gnu = gnuExtract(archive, reference);
      assert.equal(gnu.status, 0, gnu.stderr);
      const tar = fs.readFileSync(archive);
      const available = COMPRESSORS.filter(([name, command]) => {
        if (installed(command[0] as string)) return true;
        t.diagnostic(`${name} is not installed (.ci/run installs it): not tried`);
        return false;
      });
      const compressed = await Promise.all(available.map(([, command]) => filter(command, tar)));
      const variants: [string, Buffer][] = [["none", tar]];
      available.forEach(([name], i) => variants.push([name, compressed[i] as Buffer]));
      const trees = variants.map(([name]) => path.join(dir, `ours-${name.replace(/\W/g, "")}`));
      await Promise.all(
        variants.map(async ([name, bytes], i) => {
          const file = path.join(dir, `archive.${name.replace(/\W/g, "")}`);
          fs.writeFileSync(file, bytes);
          await extractFile(file, trees[i] as string);
        }),
      );
      variants.forEach(([name], i) => {
        const differences = treeDifferences(trees[i] as string, reference);
        assert.deepEqual(differences, [], `${label}, compressed by ${name}`);
      });
      fs.rmSync(dir, { recursive: true, force: true });
    });
  });
});
