/**
 * Writing a file atomically: a temporary file beside it, renamed over it, so that readers see the
 * old content or the new one, never a part. Two kinds of files, two rules:
 * - the tool's own files in the store ({@link replaceFile}): a link in their place is replaced,
 *   never followed, so that a link planted there cannot make a write land outside the store;
 * - the user's files (a registry file, a lock file, a signature beside them;
 *   {@link writeFileAtomic}): written through a link to them, their mode kept, as editors do.
 *   write-file-atomic does that; it is loaded on the first such write, so commands that only
 *   read (`ls`, `--help`, a warm `pull`) never load it.
 */
import { randomBytes } from "node:crypto";
import { open, rename, rm } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import type { Options } from "write-file-atomic";

/**
 * Writes the user's file `path` atomically, through a link to it, keeping its mode (the second
 * rule above). `options` are write-file-atomic's.
 */
export async function writeFileAtomic(
  path: string,
  data: string | Buffer,
  options?: Options,
): Promise<void> {
  const { default: write } = await import("write-file-atomic");
  await write(path, data, options);
}

/**
 * Replaces the tool's own file `path` with `data` atomically: a new temporary file beside it
 * (`.NAME.<12 hex>.tmp`), written (and fsynced unless `fsync` is false), then renamed over it. A
 * symbolic link at `path` is replaced, never followed (the first rule above).
 */
export async function replaceFile(
  path: string,
  data: string | Uint8Array,
  options: { fsync?: boolean } = {},
): Promise<void> {
  const temporary = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString("hex")}.tmp`);
  try {
    const handle = await open(temporary, "wx", 0o644);
    try {
      await handle.writeFile(data);
      if (options.fsync ?? true) await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temporary, path);
  } catch (err) {
    await rm(temporary, { force: true });
    throw err;
  }
}
