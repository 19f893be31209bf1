/**
 * An image's copies in the store, put in place and taken away atomically: staging trees (where an
 * archive is extracted), the tree's marker, installing a tree, and removing a tree through the
 * store's trash so that no reader sees it half-deleted.
 */
import { randomBytes } from "node:crypto";
import { lstat, mkdir, readFile, readdir, rename, rm, writeFile } from "node:fs/promises";
import { basename, join } from "node:path";
import { fsError, hasCode } from "../errors.js";
import { MARKER_FILE, bookkeeping, stagingBaseName, stagingName } from "./layout.js";

function unique(name: string): string {
  return stagingName(name, randomBytes(4).toString("hex"));
}

/** A fresh staging directory path (not created) for the tree `baseName` in store `dir`. */
export async function stagingPath(dir: string, baseName: string): Promise<string> {
  const staging = bookkeeping(dir).staging;
  await mkdir(staging, { recursive: true });
  return join(staging, unique(baseName));
}

/**
 * Deletes staging trees of `baseName` left by killed processes. Call it while holding the image's
 * lock: no live process can be extracting into them then.
 */
export async function removeStaleStaging(dir: string, baseName: string): Promise<void> {
  const staging = bookkeeping(dir).staging;
  const names = await readdir(staging).catch(() => [] as string[]);
  for (const name of names) {
    if (stagingBaseName(name) === baseName) {
      await rm(join(staging, name), { recursive: true, force: true });
    }
  }
}

/**
 * Makes `path` disappear at once (a rename into the store's trash), then deletes it. Readers never
 * see a half-deleted tree under its real name. Returns false when there was nothing there.
 */
export async function removeAtomically(dir: string, path: string): Promise<boolean> {
  const trash = bookkeeping(dir).trash;
  await mkdir(trash, { recursive: true });
  const target = join(trash, unique(basename(path)));
  try {
    await rename(path, target);
  } catch (err) {
    if (hasCode(err, "ENOENT")) return false;
    throw fsError(err, "remove", path);
  }
  await rm(target, { recursive: true, force: true });
  return true;
}

/** A marker is 64 hex digits; anything longer is not one (and is not read whole). */
const MARKER_MAX_BYTES = 128;

/**
 * The sha256 recorded in a tree's marker, or undefined when the tree or marker is missing or the
 * marker is not a small regular file (an archive may not pass off a link or a device as one).
 */
export async function readMarker(tree: string): Promise<string | undefined> {
  const marker = join(tree, MARKER_FILE);
  try {
    const st = await lstat(marker);
    if (!st.isFile() || st.size > MARKER_MAX_BYTES) return undefined;
    return (await readFile(marker, "utf8")).trim();
  } catch (err) {
    if (hasCode(err, "ENOENT") || hasCode(err, "ENOTDIR")) return undefined;
    throw fsError(err, "read", marker);
  }
}

/**
 * Publishes a fully extracted staging tree: writes its marker last, then swaps it in place of
 * `tree` (the old tree, if any, goes to the trash). Until this returns, `tree` is either the old
 * tree or absent — never a partial one with a good marker.
 */
export async function installTree(
  dir: string,
  staging: string,
  tree: string,
  sha256: string,
): Promise<void> {
  const marker = join(staging, MARKER_FILE);
  try {
    // The archive may hold a member of that name, even a symlink: replace it, never write through.
    await rm(marker, { recursive: true, force: true });
    await writeFile(marker, sha256, { flag: "wx" });
  } catch (err) {
    throw fsError(err, "write", marker);
  }
  await removeAtomically(dir, tree);
  try {
    await rename(staging, tree);
  } catch (err) {
    throw fsError(err, "move the extracted tree to", tree);
  }
}
