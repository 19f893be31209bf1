/**
 * File-system errors met in a store, worded for the user: a store (or its bookkeeping directory)
 * that is not a directory, a store that cannot be written. Never a bare `ENOTDIR` or `EROFS`.
 */
import { stat } from "node:fs/promises";
import { dirname } from "node:path";
import { AxError, fsError, hasCode, type SystemError } from "../errors.js";
import { bookkeeping as bookkeepingPaths } from "./layout.js";

/** Error codes that mean the store cannot be written: a read-only mount, or no permission. */
const NOT_WRITABLE = ["EROFS", "EACCES", "EPERM"];

/** True when `err` says that the file system, or the permissions, forbid writing. */
export function isNotWritable(err: unknown): boolean {
  return NOT_WRITABLE.some((code) => hasCode(err, code));
}

/** The first path, from the root down to `path`, that exists and is not a directory. */
async function firstNonDirectory(path: string): Promise<string | undefined> {
  const chain: string[] = [];
  for (let p = path; ; p = dirname(p)) {
    chain.unshift(p);
    if (dirname(p) === p) break;
  }
  for (const p of chain) {
    try {
      if (!(await stat(p)).isDirectory()) return p;
    } catch {
      return undefined;
    }
  }
  return undefined;
}

function notADirectory(store: string, culprit: string, cause: unknown): AxError {
  if (culprit === store || !culprit.startsWith(`${store}/`)) {
    return new AxError(
      culprit === store
        ? `the store ${store} is not a directory`
        : `the store ${store} is not a directory: ${culprit} is a file`,
      {
        hint: "give a directory with -S, AXVISOR_IMAGE_LOCAL_STORAGE or local_storage in .image.toml",
        cause,
      },
    );
  }
  const bookkeeping = bookkeepingPaths(store).root;
  return new AxError(
    culprit === bookkeeping
      ? `${culprit} is not a directory: the store keeps its bookkeeping there`
      : `${culprit} is not a directory (in the store ${store})`,
    { hint: `move ${culprit} away: axvisor-image makes the directory again`, cause },
  );
}

/**
 * An {@link AxError} for `err`, met while trying to `action` `path` in the store `store`: when a
 * part of the path is a file, it names that file; when the store cannot be written, it says so
 * (`the store ... is read-only`); otherwise as {@link fsError}.
 */
export async function storeError(
  store: string,
  err: unknown,
  action: string,
  path: string,
): Promise<AxError> {
  if (err instanceof AxError) return err;
  if (hasCode(err, "ENOTDIR") || hasCode(err, "EEXIST")) {
    const culprit = await firstNonDirectory(path);
    if (culprit !== undefined) return notADirectory(store, culprit, err);
  }
  if (isNotWritable(err)) {
    const code = (err as SystemError).code!;
    const owner = code === "EROFS" ? undefined : await otherOwner(path);
    const why =
      owner !== undefined
        ? `belongs to another user (uid ${owner})`
        : `is ${code === "EROFS" ? "read-only" : "not writable"}`;
    return new AxError(`cannot ${action} ${path}: the store ${store} ${why} (${code})`, {
      hint: "ls, info, path, verify and du work on a store you cannot write; to change one, use a store of your own: -S DIR, or AXVISOR_IMAGE_LOCAL_STORAGE=DIR",
      cause: err,
    });
  }
  return fsError(err, action, path);
}

/** The uid owning `path` (or its nearest existing parent) when it is not this process's. */
async function otherOwner(path: string): Promise<number | undefined> {
  if (process.getuid === undefined) return undefined;
  for (let p = path; ; p = dirname(p)) {
    const st = await stat(p).catch(() => undefined);
    if (st !== undefined) return st.uid === process.getuid() ? undefined : st.uid;
    if (dirname(p) === p) return undefined;
  }
}
