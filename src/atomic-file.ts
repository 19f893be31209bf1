/**
 * Writing a file atomically (a temporary file renamed over it), with write-file-atomic loaded on
 * the first write: commands that only read (`ls`, `--help`, a warm `pull`) never load it.
 */
import type { Options } from "write-file-atomic";

/**
 * Writes `data` to `path` atomically: readers see the old content or the new one, never a part.
 * `options` are write-file-atomic's (`fsync: false` for files the store can do without).
 */
export async function writeFileAtomic(
  path: string,
  data: string | Buffer,
  options?: Options,
): Promise<void> {
  const { default: write } = await import("write-file-atomic");
  await write(path, data, options);
}
