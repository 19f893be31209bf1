/**
 * tgosimages-like root file systems for the benchmark: a real ext4 image (`mke2fs -d` from a tree
 * of pseudo-text files, a few incompressible ones, half of the image never written), packed alone
 * as `<name>.img.tar.xz` (`xz -T0 -6`) and `<name>.img.tar.zst`. Generated once per size into the
 * benchmark cache (cache.ts) and reproducible: fixed UUID, hash seed and times (`E2FSPROGS_FAKE_TIME`,
 * then every inode's ctime and atime set with `debugfs`), seeded content, `mke2fs` sorting names.
 */
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdir, readdir, rm, truncate, utimes, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { FIXED_EPOCH, pack, run } from "./cache.js";
import { cachedSet, describeArchive, noise, prng, type GeneratedArchive } from "./image.js";

/** Bump whenever the content below changes: it keys the cache directory. */
export const ROOTFS_GENERATOR_VERSION = 1;

const KIB = 1024;
const MIB = 1024 * KIB;
/** Share of the image filled with files; the rest is never written. */
const FILLED = 0.5;
/** Share of the file bytes that are incompressible (firmware, already-compressed data). */
const INCOMPRESSIBLE = 0.07;
const UUID = "0b1c5e7e-0000-4000-8000-000000000001";
const HASH_SEED = "0b1c5e7e-0000-4000-8000-000000000002";
/** Directories of the tree, as in a small distribution. */
const DIRS = [
  "etc",
  "etc/init.d",
  "usr/bin",
  "usr/lib",
  "usr/lib/modules/6.6.0/kernel",
  "usr/lib/firmware",
  "usr/share/doc",
  "usr/share/locale",
  "var/log",
  "var/lib/dpkg",
  "opt/guest",
];

/** What the archive's single member must be once extracted. */
export interface ImageFacts {
  /** Member name (`rootfs.img`). */
  name: string;
  size: number;
  sha256: string;
  /** Bytes in 4 KiB blocks that are not all zeros: a copy stored with holes needs about this. */
  dataBytes: number;
}

/** A generated `.img.tar.*` archive and the image it holds. */
export interface RootfsArchive extends GeneratedArchive {
  image: ImageFacts;
}

/** One size's archives. */
export interface RootfsSet extends Record<string, RootfsArchive> {
  xz: RootfsArchive;
  zst: RootfsArchive;
}

/** Fresh pseudo-text (word salad, config and log lines) that never repeats: ~3.6:1 under xz -6. */
class TextSource {
  readonly #random: () => number;
  readonly #words: string[];

  constructor(seed: number) {
    this.#random = prng(seed);
    const syllables = ["ar", "ce", "os", "vi", "sor", "ker", "nel", "mem", "pa", "ge", "dev"];
    const more = ["irq", "tab", "le", "map", "io", "cpu", "vm", "exit", "trap", "bus", "net"];
    const all = [...syllables, ...more, "blk", "fs"];
    this.#words = Array.from({ length: 4096 }, () => {
      let w = "";
      for (let i = 1 + Math.floor(this.#random() * 3); i >= 0; i--) w += this.#pick(all);
      return w;
    });
  }

  #pick<T>(list: T[]): T {
    return list[Math.floor(this.#random() * list.length)]!;
  }

  #line(): string {
    const random = this.#random;
    const word = () => this.#pick(this.#words);
    const kind = random();
    if (kind < 0.2) return `${word()}.${word()} = ${Math.floor(random() * 65536)}`;
    if (kind < 0.45) {
      const stamp = (random() * 100000).toFixed(6).padStart(12);
      const addr = Math.floor(random() * 2 ** 32).toString(16);
      return `[${stamp}] ${word()}: ${word()} ${word()} 0x${addr}`;
    }
    const words: string[] = [];
    for (let i = 6 + Math.floor(random() * 10); i > 0; i--) words.push(word());
    return words.join(" ");
  }

  /** The next `bytes` bytes of text. */
  take(bytes: number): Buffer {
    const lines: string[] = [];
    let size = 0;
    while (size < bytes) {
      const line = this.#line();
      lines.push(line);
      size += line.length + 1;
    }
    return Buffer.from(lines.join("\n") + "\n").subarray(0, bytes);
  }
}

/**
 * Writes files into `root` until they hold `total` bytes: sizes log-uniform from 512 B to 2 MiB,
 * {@link INCOMPRESSIBLE} of the bytes incompressible, all with the fixed mtime. Returns the paths
 * (relative, directories first) for the time fix-up.
 */
async function writeTree(root: string, total: number, seed: number): Promise<string[]> {
  const random = prng(seed);
  const text = new TextSource(seed + 1);
  const dirs = new Set<string>();
  const files: string[] = [];
  let written = 0;
  let opaque = 0;
  for (let i = 0; written < total; i++) {
    const top = DIRS[i % DIRS.length]!;
    const sub = random() < 0.5 ? `${top}/p${Math.floor(random() * 16)}` : top;
    const size = Math.min(total - written, Math.floor(512 * Math.pow(4096, random())));
    const incompressible = opaque < written * INCOMPRESSIBLE;
    const name = `${sub}/${incompressible ? `blob${i}.bin` : `file${i}.txt`}`;
    for (let d = sub; d !== "."; d = d.includes("/") ? d.slice(0, d.lastIndexOf("/")) : ".") {
      dirs.add(d);
    }
    await mkdir(join(root, sub), { recursive: true });
    await writeFile(join(root, name), incompressible ? noise(name, size) : text.take(size));
    if (incompressible) opaque += size;
    written += size;
    files.push(name);
  }
  const all = [...[...dirs].sort(), ...files];
  for (const path of [...all].reverse()) await utimes(join(root, path), FIXED_EPOCH, FIXED_EPOCH);
  await utimes(root, FIXED_EPOCH, FIXED_EPOCH);
  return all;
}

/** sha256 and the bytes in non-zero 4 KiB blocks of the file at `path`. */
async function imageFacts(path: string, name: string, size: number): Promise<ImageFacts> {
  const hash = createHash("sha256");
  const zero = Buffer.alloc(4 * KIB);
  let dataBytes = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: 4 * MIB })) {
    const buf = chunk as Buffer;
    hash.update(buf);
    for (let at = 0; at < buf.length; at += zero.length) {
      const block = buf.subarray(at, at + zero.length);
      if (!block.equals(zero.subarray(0, block.length))) dataBytes += block.length;
    }
  }
  return { name, size, sha256: hash.digest("hex"), dataBytes };
}

/** Builds the ext4 image `imagePath` of `size` bytes from the tree `root`. */
async function makeExt4(root: string, paths: string[], imagePath: string, size: number) {
  const env = { E2FSPROGS_FAKE_TIME: String(FIXED_EPOCH), SOURCE_DATE_EPOCH: String(FIXED_EPOCH) };
  await writeFile(imagePath, "");
  await truncate(imagePath, size);
  await run(
    ["mke2fs", "-q", "-F", "-t", "ext4", "-b", "4096", "-L", "rootfs", "-U", UUID, "-E"].concat([
      `hash_seed=${HASH_SEED},root_owner=0:0`,
      "-d",
      root,
      imagePath,
    ]),
    env,
  );
  // mke2fs copies the source files' ctime and atime: set them to the fixed time too.
  const stamp = new Date(FIXED_EPOCH * 1000).toISOString().replace(/[-:T]|\.\d+Z$/g, "");
  const commands = ["/", "/lost+found", ...paths.map((p) => `/${p}`)].flatMap((p) => [
    `sif ${p} ctime ${stamp}`,
    `sif ${p} atime ${stamp}`,
  ]);
  const script = `${imagePath}.debugfs`;
  await writeFile(script, commands.join("\n") + "\n");
  try {
    await run(["debugfs", "-w", "-f", script, imagePath], env);
  } finally {
    await rm(script, { force: true });
  }
}

/**
 * The `<label>` root file system (`size` bytes) as `.img.tar.xz` and `.img.tar.zst`, from
 * `<cacheDir>/rootfs-<label>-g<version>/` (generated when missing).
 */
export async function ensureRootfs(
  cacheDir: string,
  label: string,
  size: number,
  log: (line: string) => void,
): Promise<RootfsSet> {
  const dir = join(cacheDir, `rootfs-${label}-g${ROOTFS_GENERATOR_VERSION}`);
  return cachedSet(dir, log, `the ${label} ext4 root file system`, async (d) => {
    const tree = join(d, "tree");
    const imageDir = join(d, "image");
    await mkdir(tree);
    await mkdir(imageDir);
    const paths = await writeTree(tree, Math.floor(size * FILLED) - 8 * MIB, size);
    const name = "rootfs.img";
    const imagePath = join(imageDir, name);
    await makeExt4(tree, paths, imagePath, size);
    await rm(tree, { recursive: true, force: true });
    const image = await imageFacts(imagePath, name, size);
    const manifest = { files: 1, directories: 0, symlinks: 0, bytes: size };
    const set: Partial<RootfsSet> = {};
    for (const compression of ["xz", "zst"] as const) {
      const path = join(d, `rootfs-${label}.img.tar.${compression}`);
      await pack(imageDir, [name], path, compression);
      set[compression] = { ...(await describeArchive(path, manifest)), image };
    }
    await rm(imageDir, { recursive: true, force: true });
    if ((await readdir(d)).length !== 2) throw new Error(`unexpected files left in ${d}`);
    return set as RootfsSet;
  });
}
