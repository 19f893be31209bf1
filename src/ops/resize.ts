/**
 * `resize`: grow an ext2/3/4 file-system image (a guest's rootfs) to a new size: the file is
 * extended, then `e2fsck -fy` and `resize2fs` (e2fsprogs) grow the file system into it. Never
 * shrinks.
 */
import { execFile } from "node:child_process";
import { constants, createReadStream } from "node:fs";
import { access, open, rename, rm, stat, truncate } from "node:fs/promises";
import { basename, delimiter, join, resolve } from "node:path";
import { promisify } from "node:util";
import { HoleWriter, WRITE_BUFFER } from "../archive/hole-writer.js";
import { AxError, UsageError, fsError, hasCode, throwIfAborted } from "../errors.js";
import { silentLogger, type Logger } from "../log.js";

/** Bytes in a MiB. */
const MIB = 1024 * 1024;

/** The e2fsprogs programs {@link resizeImage} runs. */
const RESIZE_TOOLS = ["e2fsck", "resize2fs"] as const;

/** Options of {@link resizeImage}. */
export interface ResizeOptions {
  /** The new size in MiB; must not be smaller than the image. */
  sizeMiB: number;
  /** Write the grown image here and leave the original untouched (default: grow it in place). */
  output?: string;
  /** Directories searched for the e2fsprogs programs (default: {@link defaultToolDirs}). */
  toolDirs?: string[];
  signal?: AbortSignal;
  /** The tools' progress lines go to `info`. */
  logger?: Logger;
}

/** What {@link resizeImage} did. */
export interface ResizeResult {
  /** The grown image (absolute). */
  path: string;
  /** Its size before, in bytes. */
  fromBytes: number;
  /** Its size now, in bytes. */
  toBytes: number;
}

/** `PATH`, then the sbin directories where e2fsprogs lives but which a user's `PATH` may lack. */
export function defaultToolDirs(): string[] {
  const path = (process.env.PATH ?? "").split(delimiter).filter((d) => d !== "");
  return [...new Set([...path, "/usr/local/sbin", "/usr/sbin", "/sbin"])];
}

/** The first executable `name` in `dirs`, or undefined. */
export async function findTool(name: string, dirs: readonly string[]): Promise<string | undefined> {
  for (const dir of dirs) {
    const candidate = join(dir, name);
    try {
      await access(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** Offset of the ext2/3/4 superblock magic number (0xEF53, little-endian). */
const EXT_MAGIC_OFFSET = 1024 + 0x38;

/** True when `path` starts with an ext2/3/4 superblock. */
async function isExtImage(path: string): Promise<boolean> {
  const file = await open(path, "r");
  try {
    const magic = Buffer.alloc(2);
    const { bytesRead } = await file.read(magic, 0, 2, EXT_MAGIC_OFFSET);
    return bytesRead === 2 && magic.readUInt16LE(0) === 0xef53;
  } finally {
    await file.close();
  }
}

/**
 * Grows the ext2/3/4 image `file` to `sizeMiB` MiB (in place, or into `output`). Everything is
 * checked before anything is written: the file exists and holds an ext file system, the new size
 * is not smaller, and `e2fsck` and `resize2fs` are found. With `output`, the copy is made (holes
 * kept) under a temporary name and renamed into place only once grown; in place, a failure before
 * `resize2fs` starts gives the file its old size back.
 *
 * @throws UsageError when asked to shrink; AxError naming the file or the missing program.
 */
export async function resizeImage(file: string, options: ResizeOptions): Promise<ResizeResult> {
  const logger = options.logger ?? silentLogger;
  const source = resolve(file);
  const fromBytes = await sizeOf(source);
  if (!(await isExtImage(source))) {
    throw new AxError(`${source} is not an ext2/3/4 file-system image`, {
      hint: "resize grows raw ext2/3/4 images such as a guest's rootfs.img (not partitioned disks)",
    });
  }
  const toBytes = options.sizeMiB * MIB;
  if (toBytes < fromBytes) {
    throw new UsageError(
      `refusing to shrink ${source}: it is ${formatMiB(fromBytes)} MiB, --size-mib is ${options.sizeMiB}`,
      { hint: "resize only grows images" },
    );
  }
  const tools = await locateTools(options.toolDirs ?? defaultToolDirs());
  const target = options.output === undefined ? source : await outputPath(options.output, source);
  const work = target === source ? source : `${target}.${process.pid}.resizing`;
  try {
    if (work !== source) {
      logger.info(`copying ${source} to ${target}`);
      await sparseCopy(source, work, options.signal);
    }
    if (toBytes > fromBytes) await grow(work, fromBytes, toBytes, tools, logger, options.signal);
    if (work !== target) await rename(work, target);
  } catch (err) {
    if (work !== source) await rm(work, { force: true });
    throw err;
  }
  return { path: target, fromBytes, toBytes };
}

async function sizeOf(path: string): Promise<number> {
  try {
    const st = await stat(path);
    if (!st.isFile()) throw new UsageError(`${path} is not a file`);
    return st.size;
  } catch (err) {
    if (hasCode(err, "ENOENT")) throw new UsageError(`no such file: ${path}`);
    throw fsError(err, "read", path);
  }
}

function formatMiB(bytes: number): string {
  return (bytes / MIB).toFixed(bytes % MIB === 0 ? 0 : 2);
}

async function locateTools(
  dirs: readonly string[],
): Promise<Record<(typeof RESIZE_TOOLS)[number], string>> {
  const found = await Promise.all(RESIZE_TOOLS.map((t) => findTool(t, dirs)));
  const missing = RESIZE_TOOLS.filter((_, i) => found[i] === undefined);
  if (missing.length > 0) {
    throw new AxError(
      `resize needs ${missing.join(" and ")} from e2fsprogs, which is not installed`,
      {
        hint: "install e2fsprogs (e.g. `sudo apt-get install e2fsprogs`)",
      },
    );
  }
  return { e2fsck: found[0]!, resize2fs: found[1]! };
}

/** `output` as a file path: into it when it names a directory. */
async function outputPath(output: string, source: string): Promise<string> {
  const path = resolve(output);
  try {
    if ((await stat(path)).isDirectory()) return join(path, basename(source));
  } catch (err) {
    if (!hasCode(err, "ENOENT")) throw fsError(err, "read", path);
  }
  return path;
}

/** Copies `from` to `to` leaving zero blocks as holes (rootfs images are mostly empty). */
async function sparseCopy(
  from: string,
  to: string,
  signal: AbortSignal | undefined,
): Promise<void> {
  const out = await open(to, "wx");
  const writer = new HoleWriter(out.fd, [Buffer.alloc(WRITE_BUFFER), Buffer.alloc(WRITE_BUFFER)]);
  let size = 0;
  try {
    for await (const chunk of createReadStream(from, { highWaterMark: WRITE_BUFFER, signal })) {
      await writer.write(chunk as Buffer);
      size += (chunk as Buffer).length;
    }
    await writer.finish(size);
  } catch (err) {
    await writer.settle();
    throw fsError(err, "write", to);
  } finally {
    await out.close();
  }
}

async function grow(
  path: string,
  fromBytes: number,
  toBytes: number,
  tools: Record<(typeof RESIZE_TOOLS)[number], string>,
  logger: Logger,
  signal: AbortSignal | undefined,
): Promise<void> {
  try {
    await truncate(path, toBytes);
  } catch (err) {
    throw fsError(err, "extend", path);
  }
  try {
    logger.info(`checking ${path} (e2fsck -fy)`);
    await runTool(tools.e2fsck, ["-fy", path], (code) => code <= 3, signal);
  } catch (err) {
    await truncate(path, fromBytes).catch(() => {});
    throw err;
  }
  throwIfAborted(signal);
  logger.info(`growing the file system of ${path} to ${formatMiB(toBytes)} MiB (resize2fs)`);
  await runTool(tools.resize2fs, [path], (code) => code === 0, signal);
}

const execFileAsync = promisify(execFile);

/** Runs `tool args`; a status `ok` refuses becomes an AxError quoting its last output line. */
async function runTool(
  tool: string,
  args: string[],
  ok: (code: number) => boolean,
  signal: AbortSignal | undefined,
): Promise<void> {
  const name = basename(tool);
  try {
    await execFileAsync(tool, args, {
      signal,
      env: { ...process.env, LC_ALL: "C" },
      maxBuffer: 16 * MIB,
    });
  } catch (err) {
    const e = err as { code?: unknown; stdout?: string; stderr?: string };
    throwIfAborted(signal);
    if (typeof e.code === "number" && ok(e.code)) return;
    const output = `${e.stderr ?? ""}\n${e.stdout ?? ""}`.trim().split("\n");
    const last = output.filter((l) => l.trim() !== "").at(-1) ?? String(e.code ?? err);
    throw new AxError(`${name} failed on ${args.at(-1)}: ${last.trim()}`, { cause: err });
  }
}
