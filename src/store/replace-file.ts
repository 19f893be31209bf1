/** Replacing a file of the store atomically, without following a link in its place. */
import { randomBytes } from "node:crypto";
import { open, rename, rm } from "node:fs/promises";
import { basename, dirname, join } from "node:path";

/**
 * Replaces `path` with `data` atomically: a new temporary file beside it, written (and fsynced
 * when `fsync`), then renamed over it. A symbolic link at `path` is replaced, never followed: a
 * link planted in the store cannot make a write land outside it (write-file-atomic writes to the
 * link's target).
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
