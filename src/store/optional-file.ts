/** Bookkeeping files the store can do without: caches, stamps and records. */
import { mkdir } from "node:fs/promises";
import { dirname } from "node:path";
import { writeFileAtomic } from "../atomic-file.js";

/**
 * Writes `value` as JSON to `path` atomically (temporary file and rename; not fsynced), creating
 * its directory. A failure (read-only store, full disk) is ignored: every such file is optional,
 * and its absence only costs work (a re-parse, a re-hash) or falls back to a safe rule.
 */
export async function writeOptionalJson(path: string, value: unknown): Promise<void> {
  try {
    await mkdir(dirname(path), { recursive: true });
    await writeFileAtomic(path, JSON.stringify(value), { fsync: false });
  } catch {
    // see above
  }
}
