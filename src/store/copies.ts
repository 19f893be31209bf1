/**
 * An image's copies in the store (or `pull -o DIR`), put in place and taken away atomically:
 * staging trees (where an archive is extracted), the tree's marker, installing a tree, removing a
 * tree through the store's trash so that no reader sees it half-deleted, removing an archive with
 * its stamp and pulled-as record, removing all an image has, and an archive's copy in an output
 * directory.
 */
import { randomBytes } from "node:crypto";
import { constants } from "node:fs";
import {
  copyFile,
  link,
  lstat,
  mkdir,
  readFile,
  readdir,
  rename,
  rm,
  stat,
  writeFile,
} from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { fsError, hasCode } from "../errors.js";
import {
  bookkeeping,
  markerPath,
  outputTempPath,
  outputTempPid,
  stagingBaseName,
  stagingPath,
  storedPaths,
  trashPath,
  type StoreDirs,
} from "./layout.js";
import { isAlive } from "./lock-owner.js";
import { removePulledAs } from "./records.js";
import { removeStamp } from "./stamps.js";

/**
 * Where a tree is put in place: in a store (staging trees and trash in its bookkeeping), or in an
 * output directory (`pull -o DIR`: hidden temporary entries beside the tree, nothing else).
 */
export type TreeHome = "store" | "output";

/** What makes a staging or trash name unique: 8 hex digits. */
function token(): string {
  return randomBytes(4).toString("hex");
}

/**
 * The names in the bookkeeping folder `dir` (staging, trash, uploads): none when it is missing or
 * is not a real directory. The tool makes these folders itself; one that is a link (a restored
 * cache, a hand-made link) may lead to a user's files, which must never be taken for leftovers.
 */
export async function bookkeepingNames(dir: string): Promise<string[]> {
  try {
    if (!(await lstat(dir)).isDirectory()) return [];
    return await readdir(dir);
  } catch {
    return [];
  }
}

/** A fresh staging directory path (not created) for the tree `baseName` in `dir`. */
export async function newStagingPath(
  dir: string,
  baseName: string,
  home: TreeHome = "store",
): Promise<string> {
  if (home === "output") return outputTempPath(dir, baseName, token());
  await mkdir(bookkeeping(dir).staging, { recursive: true });
  return stagingPath(dir, baseName, token());
}

/**
 * Deletes staging trees of `baseName` left by killed processes. Call it while holding the image's
 * lock: no live process of the store can be extracting into them then. In an output directory,
 * which processes of other stores may share, only those whose process is gone.
 */
export async function removeStaleStaging(
  dir: string,
  baseName: string,
  home: TreeHome = "store",
): Promise<void> {
  if (home === "output") {
    for (const name of await readdir(dir).catch(() => [] as string[])) {
      const pid = outputTempPid(name, baseName);
      if (pid !== undefined && !isAlive(pid)) {
        await rm(join(dir, name), { recursive: true, force: true });
      }
    }
    return;
  }
  const staging = bookkeeping(dir).staging;
  for (const name of await bookkeepingNames(staging)) {
    if (stagingBaseName(name) === baseName) {
      await rm(join(staging, name), { recursive: true, force: true });
    }
  }
}

/**
 * Makes `path` disappear at once (a rename into the store's trash, or to a hidden name in an
 * output directory), then deletes it. Readers never see a half-deleted tree under its real name.
 * Returns false when there was nothing there.
 */
async function removeAtomically(
  dir: string,
  path: string,
  home: TreeHome = "store",
): Promise<boolean> {
  let target: string;
  if (home === "output") target = outputTempPath(dir, basename(path), token());
  else {
    await mkdir(bookkeeping(dir).trash, { recursive: true });
    target = trashPath(dir, path, token());
  }
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
  const marker = markerPath(tree);
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
  home: TreeHome = "store",
): Promise<void> {
  const marker = markerPath(staging);
  try {
    // The archive may hold a member of that name, even a symlink: replace it, never write through.
    await rm(marker, { recursive: true, force: true });
    await writeFile(marker, sha256, { flag: "wx" });
  } catch (err) {
    throw fsError(err, "write", marker);
  }
  await removeAtomically(dir, tree, home);
  try {
    await rename(staging, tree);
  } catch (err) {
    throw fsError(err, "move the extracted tree to", tree);
  }
}

/**
 * Removes the extracted tree `path` of `dir` at once ({@link removeAtomically}) and forgets its
 * pulled-as record. Returns false when there was no tree.
 */
export async function removeTree(dir: string, path: string): Promise<boolean> {
  const removed = await removeAtomically(dir, path);
  await removePulledAs(path);
  return removed;
}

/** Removes the archive (or download in progress) `path`, its stamp and its pulled-as record. */
export async function removeArchive(path: string): Promise<void> {
  try {
    await rm(path, { force: true });
  } catch (err) {
    throw fsError(err, "remove", path);
  }
  await removeStamp(path);
  await removePulledAs(path);
}

/**
 * Removes what the base name `baseName` has in `dirs`: its archives under every extension, its
 * downloads in progress and its tree, with their stamps and records. `present` lists the names in
 * the store and in the trees' directory (read once for many base names): only those are touched.
 * A tree is removed only when its marker shows this tool (or the Rust tool) made it: a folder of
 * the same name without one is the user's, and is `kept`.
 */
export async function removeStored(
  dirs: StoreDirs,
  baseName: string,
  present: { store: readonly string[]; trees: readonly string[] },
): Promise<{ removed: string[]; kept: string[] }> {
  const removed: string[] = [];
  const kept: string[] = [];
  const { files, tree } = storedPaths(dirs, baseName);
  for (const file of files.filter((f) => present.store.includes(basename(f)))) {
    await removeArchive(file);
    removed.push(file);
  }
  if (present.trees.includes(baseName)) {
    if ((await readMarker(tree)) === undefined && (await isDirectory(tree))) kept.push(tree);
    else if (await removeTree(dirs.trees, tree)) removed.push(tree);
  }
  return { removed, kept };
}

/** True for a directory (not followed if a link). */
async function isDirectory(path: string): Promise<boolean> {
  return lstat(path).then(
    (st) => st.isDirectory(),
    () => false,
  );
}

/**
 * Puts the archive `from` (in a store) at `to` (in an output directory): a hard link when both are
 * on one file system, else a copy (a clone where the file system can), written to a hidden name
 * and renamed. Nothing to do when `to` is that very file already.
 */
export async function exportArchive(from: string, to: string, baseName: string): Promise<void> {
  const [source, present] = await Promise.all([stat(from), stat(to).catch(() => undefined)]);
  if (present?.dev === source.dev && present.ino === source.ino) return;
  const temp = outputTempPath(dirname(to), baseName, token());
  try {
    await link(from, temp).catch(() => copyFile(from, temp, constants.COPYFILE_FICLONE));
    await rename(temp, to);
  } catch (err) {
    await rm(temp, { force: true });
    throw fsError(err, "write", to);
  }
}

/** `path` when it is a regular file (not followed if a link), else undefined. */
export async function regularFileAt(path: string): Promise<string | undefined> {
  try {
    return (await lstat(path)).isFile() ? path : undefined;
  } catch (err) {
    if (hasCode(err, "ENOENT") || hasCode(err, "ENOTDIR")) return undefined;
    throw fsError(err, "read", path);
  }
}
