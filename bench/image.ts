/**
 * Deterministic guest-like bundles for the benchmark, cached (see cache.ts) by generator version:
 * a big one (~256 MiB uncompressed: an incompressible 16 MiB kernel, a rootfs.img that is half
 * zero blocks and half pseudo-text, 600 small files in nested directories, two symlinks), packed
 * both as `.tar.gz` and as `.tar.xz`, and a tiny one (`.tar.gz`). They are packed with the system
 * `tar` (sorted, fixed owners and times) and `gzip -n` / `xz`, so the same generator version always
 * yields the same bytes.
 */
import { createCipheriv, createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import {
  mkdir,
  open,
  readFile,
  readdir,
  lstat,
  rename,
  rm,
  symlink,
  writeFile,
} from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { pack, type Compression } from "./cache.js";

/** Bump whenever the content below changes: it keys the cache directory. */
export const GENERATOR_VERSION = 2;

const MIB = 1024 * 1024;
const BLOCK = 64 * 1024;
const KERNEL_BYTES = 16 * MIB;
const ROOTFS_BYTES = 236 * MIB;
const SMALL_FILES = 600;
const TEXT_POOL_BYTES = 8 * MIB;

/** What an extracted image tree must contain (the tool's marker file aside). */
export interface TreeManifest {
  files: number;
  directories: number;
  symlinks: number;
  /** Sum of the regular files' sizes. */
  bytes: number;
}

/** One generated archive. */
export interface GeneratedArchive {
  /** Absolute path of the archive. */
  path: string;
  /** Its size in bytes. */
  size: number;
  /** Its sha256, lower-case hex. */
  sha256: string;
  /** What extracting it yields. */
  manifest: TreeManifest;
}

/** The benchmark's bundles. */
export interface BenchImages {
  /** The ~256 MiB guest-like image, `.tar.gz`. */
  big: GeneratedArchive;
  /** The same tree, `.tar.xz`. */
  bigXz: GeneratedArchive;
  /** A few-kilobyte image. */
  tiny: GeneratedArchive;
}

/** mulberry32: a small seeded PRNG, enough for reproducible shapes and text. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `n` incompressible bytes: an AES-CTR keystream with a key derived from `label`. */
export function noise(label: string, n: number): Buffer {
  const key = createHash("sha256").update(label).digest();
  const cipher = createCipheriv("aes-256-ctr", key, Buffer.alloc(16));
  return Buffer.concat([cipher.update(Buffer.alloc(n)), cipher.final()]);
}

/** Pseudo-text (word salad, config lines, log lines): compresses about 3:1, not trivially. */
export function textPool(random: () => number, bytes: number): Buffer {
  const syllables = ["ar", "ce", "os", "vi", "sor", "ker", "nel", "mem", "pa", "ge", "dev", "irq"];
  const more = ["tab", "le", "map", "io", "cpu", "vm", "exit", "trap", "bus", "net", "blk", "fs"];
  const all = [...syllables, ...more];
  const pick = <T>(list: T[]): T => list[Math.floor(random() * list.length)]!;
  const words = Array.from({ length: 4096 }, () => {
    let w = "";
    for (let i = 1 + Math.floor(random() * 3); i >= 0; i--) w += pick(all);
    return w;
  });
  const lines: string[] = [];
  let size = 0;
  while (size < bytes) {
    const kind = random();
    let line: string;
    if (kind < 0.2) {
      line = `${pick(words)}.${pick(words)} = ${Math.floor(random() * 65536)}`;
    } else if (kind < 0.45) {
      const stamp = (random() * 100000).toFixed(6);
      line = `[${stamp.padStart(12)}] ${pick(words)}: ${pick(words)} ${pick(words)} 0x${Math.floor(random() * 2 ** 32).toString(16)}`;
    } else {
      line = Array.from({ length: 6 + Math.floor(random() * 10) }, () => pick(words)).join(" ");
    }
    lines.push(line);
    size += line.length + 1;
  }
  return Buffer.from(lines.join("\n") + "\n").subarray(0, bytes);
}

/** Writes rootfs.img: 64 KiB blocks, exactly half of them zero (shuffled), the rest text slices. */
async function writeRootfs(path: string, random: () => number, pool: Buffer): Promise<void> {
  const blocks = ROOTFS_BYTES / BLOCK;
  const zero = Array.from({ length: blocks }, (_, i) => i < blocks / 2);
  for (let i = blocks - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [zero[i], zero[j]] = [zero[j]!, zero[i]!];
  }
  const empty = Buffer.alloc(BLOCK);
  const file = await open(path, "w");
  try {
    const batch: Buffer[] = [];
    for (let i = 0; i < blocks; i++) {
      const start = Math.floor(random() * (pool.length - BLOCK));
      batch.push(zero[i] ? empty : pool.subarray(start, start + BLOCK));
      if (batch.length === 32 || i === blocks - 1) {
        await file.writev(batch.splice(0));
      }
    }
  } finally {
    await file.close();
  }
}

/** Writes 600 small files (text and binary, 64 B to 16 KiB) below `root/overlay`, nested 1-4 deep. */
async function writeSmallFiles(root: string, random: () => number, pool: Buffer): Promise<void> {
  const tops = ["etc", "usr/lib", "usr/share/doc", "usr/lib/modules/6.6.0", "var/lib", "opt/guest"];
  for (let i = 0; i < SMALL_FILES; i++) {
    const top = tops[i % tops.length]!;
    const depth = Math.floor(random() * 3);
    const parts = Array.from({ length: depth }, (_, d) => `d${d}-${Math.floor(random() * 4)}`);
    const size = 64 + Math.floor(random() * (16 * 1024 - 64));
    const binary = i % 5 === 0;
    const name = binary ? `mod${i}.ko` : `file${i}.conf`;
    const path = join(root, "overlay", top, ...parts, name);
    const start = Math.floor(random() * (pool.length - size));
    const body = binary ? noise(`small-${i}`, size) : pool.subarray(start, start + size);
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, body);
  }
  await mkdir(join(root, "overlay/usr/share/zoneinfo"), { recursive: true });
  await writeFile(join(root, "overlay/usr/share/zoneinfo/UTC"), "TZif2 UTC\n");
  await symlink("usr/lib", join(root, "overlay/lib"));
  await symlink("../usr/share/zoneinfo/UTC", join(root, "overlay/etc/localtime"));
}

/** Counts what `dir` holds, the way an extracted tree is checked. */
export async function scanTree(
  dir: string,
  ignore: ReadonlySet<string> = new Set(),
): Promise<TreeManifest> {
  const out: TreeManifest = { files: 0, directories: 0, symlinks: 0, bytes: 0 };
  const walk = async (d: string): Promise<void> => {
    for (const entry of await readdir(d, { withFileTypes: true })) {
      if (d === dir && ignore.has(entry.name)) continue;
      const path = join(d, entry.name);
      if (entry.isSymbolicLink()) out.symlinks++;
      else if (entry.isDirectory()) {
        out.directories++;
        await walk(path);
      } else if (entry.isFile()) {
        out.files++;
        out.bytes += (await lstat(path)).size;
      }
    }
  };
  await walk(dir);
  return out;
}

/** sha256 of a file, streamed. */
export async function sha256File(path: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(path, { highWaterMark: MIB }))
    hash.update(chunk as Buffer);
  return hash.digest("hex");
}

/** Size and sha256 of the archive at `path`, with the manifest of what it holds. */
export async function describeArchive(
  path: string,
  manifest: TreeManifest,
): Promise<GeneratedArchive> {
  const size = (await lstat(path)).size;
  return { path, size, sha256: await sha256File(path), manifest };
}

/** Fills a tree with `fill`, then packs it once per compression, in that order. */
async function buildArchives(
  work: string,
  name: string,
  fill: (root: string) => Promise<void>,
  compressions: Compression[],
): Promise<GeneratedArchive[]> {
  const root = join(work, `${name}.tree`);
  await rm(root, { recursive: true, force: true });
  await mkdir(root, { recursive: true });
  await fill(root);
  const manifest = await scanTree(root);
  const members = (await readdir(root)).sort();
  const archives: GeneratedArchive[] = [];
  for (const compression of compressions) {
    const path = join(work, `${name}.tar.${compression}`);
    await pack(root, members, path, compression);
    archives.push(await describeArchive(path, manifest));
  }
  await rm(root, { recursive: true, force: true });
  return archives;
}

async function fillBig(root: string): Promise<void> {
  const random = prng(0x5eed);
  const pool = textPool(random, TEXT_POOL_BYTES);
  await writeFile(join(root, "kernel.bin"), noise("kernel", KERNEL_BYTES));
  await writeFile(join(root, "guest.dtb"), noise("dtb", 48 * 1024));
  await writeRootfs(join(root, "rootfs.img"), random, pool);
  await writeSmallFiles(root, random, pool);
}

async function fillTiny(root: string): Promise<void> {
  await writeFile(join(root, "kernel.bin"), noise("tiny-kernel", 4096));
  await writeFile(join(root, "guest.toml"), 'name = "bench_tiny"\nmemory = "64M"\n');
}

/**
 * What `dir/meta.json` records (archive paths relative to `dir`), made by `generate` when it is
 * missing: every generated set is kept in its own directory with its meta file written last, so
 * an interrupted generation is redone and a finished one is never redone.
 */
export async function cachedSet<T extends Record<string, GeneratedArchive>>(
  dir: string,
  log: (line: string) => void,
  what: string,
  generate: (dir: string) => Promise<T>,
): Promise<T> {
  const metaPath = join(dir, "meta.json");
  const relocate = (set: T, path: (p: string) => string) =>
    Object.fromEntries(
      Object.entries(set).map(([key, a]) => [key, { ...a, path: path(a.path) }]),
    ) as T;
  try {
    return relocate(JSON.parse(await readFile(metaPath, "utf8")) as T, (p) => join(dir, p));
  } catch {
    // not generated yet (or interrupted): generate below
  }
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  log(`generating ${what} in ${dir} (once; later runs reuse it)...`);
  const started = Date.now();
  const set = await generate(dir);
  await writeFile(`${metaPath}.tmp`, JSON.stringify(relocate(set, basename), null, 2));
  await rename(`${metaPath}.tmp`, metaPath);
  log(`generated ${what} in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  return set;
}

/** The benchmark bundles, from `<cacheDir>/bundles-g<version>/` (generated when missing). */
export async function ensureImages(
  cacheDir: string,
  log: (line: string) => void,
): Promise<BenchImages> {
  const dir = join(cacheDir, `bundles-g${GENERATOR_VERSION}`);
  return cachedSet(dir, log, "the benchmark bundles", async (d) => {
    const [big, bigXz] = await buildArchives(d, "bench-guest", fillBig, ["gz", "xz"]);
    const [tiny] = await buildArchives(d, "bench-tiny", fillTiny, ["gz"]);
    return { big: big!, bigXz: bigXz!, tiny: tiny! };
  });
}
