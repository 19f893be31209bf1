/**
 * The store's bookkeeping it can do without (caches, stamps, records): read without ever waiting
 * on what is in their place, written without ever following a link there.
 */
import { mkdir } from "node:fs/promises";
import { dirname } from "node:path";
import { replaceFile } from "../atomic-file.js";
import { readRegularFile } from "../regular-file.js";

/**
 * The text of the optional file `path`, or undefined when it is missing, unreadable, larger than
 * `maxBytes`, or not a regular file: a FIFO (a restored cache may hold one) is never waited on,
 * nor a device such as `/dev/zero` read without end.
 */
export async function readOptionalText(
  path: string,
  maxBytes: number,
): Promise<string | undefined> {
  try {
    return (await readRegularFile(path, maxBytes)).toString("utf8");
  } catch {
    return undefined;
  }
}

/** The JSON value in the optional file `path` ({@link readOptionalText}), or undefined. */
export async function readOptionalJson(path: string, maxBytes: number): Promise<unknown> {
  const text = await readOptionalText(path, maxBytes);
  try {
    return text === undefined ? undefined : (JSON.parse(text) as unknown);
  } catch {
    return undefined;
  }
}

/**
 * Writes `value` as JSON to `path` atomically ({@link replaceFile}, not fsynced), creating its
 * directory. A failure (read-only store, full disk) is ignored: every such file is optional,
 * and its absence only costs work (a re-parse, a re-hash) or falls back to a safe rule.
 */
export async function writeOptionalJson(path: string, value: unknown): Promise<void> {
  try {
    await mkdir(dirname(path), { recursive: true });
    await replaceFile(path, JSON.stringify(value), { fsync: false });
  } catch {
    // see above
  }
}
