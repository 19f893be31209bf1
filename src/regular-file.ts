/**
 * Reading a small input file the user or a registry named (a registry, a configuration file) in
 * bounded time and memory: regular files only, never more than a limit.
 *
 * A FIFO would block the open (or the read) forever, a device such as `/dev/zero` never ends, and
 * a directory has no content; each is refused with an error naming the path. The type is checked
 * with `stat` before opening (a device is never opened), then again with `fstat` on the descriptor,
 * opened with `O_NONBLOCK`, so that a file swapped for a FIFO in between cannot block either.
 */

import { constants, type Stats } from "node:fs";
import { open, stat, type FileHandle } from "node:fs/promises";
import { AxError, hasCode } from "./errors.js";

/** Why {@link readRegularFile} refused a path. */
export type FileProblem =
  | { kind: "missing" }
  | { kind: "not-regular"; type: string }
  | { kind: "too-large"; maxBytes: number };

/** A path {@link readRegularFile} will not read; {@link describeProblem} words the reason. */
export class FileProblemError extends AxError {
  readonly problem: FileProblem;

  constructor(path: string, problem: FileProblem, options: { cause?: unknown } = {}) {
    super(`${path}: ${describeProblem(problem)}`, options);
    this.name = "FileProblemError";
    this.problem = problem;
  }
}

/** `no such file`, `a FIFO, not a regular file`, `larger than 1 MiB`. */
export function describeProblem(problem: FileProblem): string {
  switch (problem.kind) {
    case "missing":
      return "no such file";
    case "not-regular":
      return `${problem.type}, not a regular file`;
    case "too-large":
      return `larger than ${formatLimit(problem.maxBytes)}`;
  }
}

/** `16 MiB` for whole mebibytes, else a byte count. */
export function formatLimit(bytes: number): string {
  const mib = bytes / (1024 * 1024);
  return Number.isInteger(mib) ? `${mib} MiB` : `${bytes} bytes`;
}

function typeOf(st: Stats): string | undefined {
  if (st.isFile()) return undefined;
  if (st.isDirectory()) return "a directory";
  if (st.isFIFO()) return "a FIFO";
  if (st.isCharacterDevice()) return "a character device";
  if (st.isBlockDevice()) return "a block device";
  if (st.isSocket()) return "a socket";
  return "a special file";
}

// Absent on Windows, where neither FIFOs nor controlling terminals get in the way of an open.
const OPEN_FLAGS = constants.O_RDONLY | (constants.O_NONBLOCK ?? 0) | (constants.O_NOCTTY ?? 0);

/**
 * Opens the regular file at `path` (symbolic links followed) for reading, without ever blocking on
 * a FIFO or opening a device: the type is checked before the open and again on the descriptor.
 * `maxBytes` (if given) is checked against the size too.
 *
 * @throws FileProblemError when `path` does not exist, is not a regular file or is larger than
 *   `maxBytes`; the system error (EACCES, EIO...) otherwise.
 */
export async function openRegularFile(path: string, maxBytes = Infinity): Promise<FileHandle> {
  const check = (st: Stats) => {
    const type = typeOf(st);
    if (type !== undefined) throw new FileProblemError(path, { kind: "not-regular", type });
    if (st.size > maxBytes) throw new FileProblemError(path, { kind: "too-large", maxBytes });
  };
  let handle;
  try {
    check(await stat(path));
    handle = await open(path, OPEN_FLAGS);
  } catch (err) {
    if (hasCode(err, "ENOENT")) {
      throw new FileProblemError(path, { kind: "missing" }, { cause: err });
    }
    throw err;
  }
  try {
    check(await handle.stat());
    return handle;
  } catch (err) {
    await handle.close();
    throw err;
  }
}

/**
 * The content of the regular file at `path` (symbolic links followed), at most `maxBytes` bytes.
 *
 * @throws FileProblemError when `path` does not exist, is not a regular file (a FIFO, a device, a
 *   directory, a socket) or holds more than `maxBytes` bytes (reading stops there); the system
 *   error (EACCES, EIO...) otherwise.
 */
export async function readRegularFile(path: string, maxBytes: number): Promise<Buffer> {
  const handle = await openRegularFile(path, maxBytes);
  try {
    const st = await handle.stat();
    // Sized from the fstat, plus one byte to see the end; grown (within the limit) if the file grew.
    let buffer = Buffer.allocUnsafe(Math.min(st.size, maxBytes) + 1);
    let total = 0;
    for (;;) {
      if (total === buffer.length) {
        const bigger = Buffer.allocUnsafe(Math.min(buffer.length * 2, maxBytes + 1));
        buffer.copy(bigger);
        buffer = bigger;
      }
      const { bytesRead } = await handle.read(buffer, total, buffer.length - total, null);
      if (bytesRead === 0) return buffer.subarray(0, total);
      total += bytesRead;
      if (total > maxBytes) throw new FileProblemError(path, { kind: "too-large", maxBytes });
    }
  } finally {
    await handle.close();
  }
}
