import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { rm, stat, type FileHandle } from "node:fs/promises";
import { fsError, hasCode } from "../errors.js";
import { stampPath } from "./layout.js";
import { readOptionalJson, writeOptionalJson } from "./optional-file.js";

/** A stamp is about a hundred bytes; anything bigger is not one. */
const MAX_STAMP_BYTES = 4096;

/** What we knew about an archive file when we last hashed it. */
interface Stamp {
  size: number;
  mtimeMs: number;
  ino: number;
  sha256: string;
}

/**
 * sha256 of a file (a path, or a file opened already: `{ handle, path }`), streamed; `onBytes`
 * reports progress.
 */
export async function hashFile(
  file: string | { handle: FileHandle; path: string },
  onBytes?: (n: number) => void,
): Promise<string> {
  const hash = createHash("sha256");
  const options = { highWaterMark: 1 << 20 };
  const path = typeof file === "string" ? file : file.path;
  try {
    const stream =
      typeof file === "string"
        ? createReadStream(file, options)
        : file.handle.createReadStream({ ...options, autoClose: false });
    for await (const chunk of stream) {
      hash.update(chunk as Buffer);
      onBytes?.((chunk as Buffer).length);
    }
  } catch (err) {
    throw fsError(err, "read", path);
  }
  return hash.digest("hex");
}

/**
 * Records that `archive`, as it is now on disk (size, mtime, inode), has digest `sha256`, so that
 * a later warm pull can trust it without hashing it again; with `hashed` (the file's stat from
 * before hashing), only if the file is still that one.
 */
export async function writeStamp(
  archive: string,
  sha256: string,
  hashed?: { size: number; mtimeMs: number; ino: number },
): Promise<void> {
  const st = await stat(archive);
  // Replaced while it was being hashed (a pull renamed a new archive in): that digest is stale.
  if (
    hashed &&
    (st.size !== hashed.size || st.mtimeMs !== hashed.mtimeMs || st.ino !== hashed.ino)
  ) {
    return;
  }
  const path = stampPath(archive);
  const stamp: Stamp = { size: st.size, mtimeMs: st.mtimeMs, ino: st.ino, sha256 };
  await writeOptionalJson(path, stamp);
}

/** Forgets what we knew about `archive` (it is being replaced or removed). */
export async function removeStamp(archive: string): Promise<void> {
  await rm(stampPath(archive), { force: true });
}

/**
 * The sha256 of `archive`: from its stamp when the file is unchanged since it was hashed (and
 * `force` is false), else by hashing it (and stamping it). Undefined when the file does not exist.
 */
export async function archiveDigest(
  archive: string,
  options: { force?: boolean; onBytes?: (n: number) => void } = {},
): Promise<string | undefined> {
  let st;
  try {
    st = await stat(archive);
  } catch (err) {
    if (hasCode(err, "ENOENT")) return undefined;
    throw fsError(err, "read", archive);
  }
  if (!options.force) {
    // No stamp (or not one): hash it.
    const stamp = (await readOptionalJson(stampPath(archive), MAX_STAMP_BYTES)) as
      Stamp | undefined;
    if (stamp?.size === st.size && stamp.mtimeMs === st.mtimeMs && stamp.ino === st.ino) {
      return stamp.sha256;
    }
  }
  const digest = await hashFile(archive, options.onBytes);
  await writeStamp(archive, digest, st);
  return digest;
}
