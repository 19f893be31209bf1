/**
 * `check`: the sha256 of a file, compared with an expected digest when one is given (axbuild's
 * `image check`). Reads nothing else: no configuration, no registry, no network.
 */
import { resolve } from "node:path";
import { UsageError } from "../errors.js";
import { openRegularFile } from "../regular-file.js";
import { sha256Problem } from "../registry/rules.js";
import { hashFile } from "../store/stamps.js";

/** What {@link checkFile} found. */
export interface CheckResult {
  /** The file, absolute (made so against the working directory, links not resolved). */
  path: string;
  /** Its sha256, 64 lower-case hex digits. */
  sha256: string;
  /** With an expected digest: whether it is the file's (hex digits compared in any case). */
  matches?: boolean;
}

/**
 * Hashes the regular file `file` and compares its digest with `expected` when given.
 *
 * @throws UsageError when `expected` is not 64 hex digits; FileProblemError when `file` is
 *   missing or not a regular file (a FIFO or a device is never read: it could block or not end).
 */
export async function checkFile(file: string, expected?: string): Promise<CheckResult> {
  if (expected !== undefined) {
    const problem = sha256Problem(expected);
    if (problem !== undefined) throw new UsageError(`--sha256 "${expected}" ${problem}`);
  }
  const path = resolve(file);
  const handle = await openRegularFile(path);
  let sha256: string;
  try {
    sha256 = await hashFile({ handle, path });
  } finally {
    await handle.close();
  }
  const result: CheckResult = { path, sha256 };
  if (expected !== undefined) result.matches = sha256 === expected.toLowerCase();
  return result;
}
