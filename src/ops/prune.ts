/**
 * `prune`: remove from the store what no registry entry owns, the leftovers of interrupted work,
 * and optionally all but the newest versions of each image.
 */
import { rm } from "node:fs/promises";
import type { Config } from "../config/config.js";
import { AxError, fsError } from "../errors.js";
import { silentLogger } from "../log.js";
import { compareNewestFirst } from "../registry/resolve.js";
import type { ImageEntry } from "../registry/types.js";
import { storeDirs, type StoreDirs } from "../store/layout.js";
import { tryWithLock } from "../store/lock.js";
import { readIncompleteMark } from "../store/state.js";
import { removeArchive, removeTree } from "../store/copies.js";
import { groupBy } from "../group-by.js";
import { scanStore, type Leftover, type StoredCopy } from "../store/scan.js";
import { openRegistry } from "./open-registry.js";
import type { OperationOptions } from "./options.js";

/** Why {@link prune} removes an item. */
export type PruneReason =
  /** An archive or tree no registry entry owns. */
  | "orphan"
  /** A version beyond the `keep` newest of its image. */
  | "old-version"
  /** An interrupted download (`.part`) or its resume metadata. */
  | "part"
  /** A half-extracted tree left by a killed process. */
  | "staging"
  /** A tree whose deletion was interrupted. */
  | "trash"
  /** The saved session of a cut upload to an OCI registry (resending the blob replaces it). */
  | "upload";

/** One item {@link prune} removed, would remove, or skipped. */
export interface PruneItem {
  /** Absolute path. */
  path: string;
  /** Disk usage in bytes. */
  bytes: number;
  reason: PruneReason;
}

/** What {@link prune} did. */
export interface PruneResult {
  /** Removed (or, with `dryRun`, to be removed), sorted by path. */
  removed: PruneItem[];
  /** Left alone because another process holds the image's lock (a pull in progress). */
  skipped: PruneItem[];
  /** Sum of the removed items' disk usage. */
  freed: number;
}

/** Options of {@link prune}. */
export interface PruneOptions extends OperationOptions {
  /** Report what would be removed without removing anything. */
  dryRun?: boolean;
  /** Also remove all but this many newest versions of each image (by `released_at`). */
  keep?: number;
  /** The registry that decides ownership (default: the store's, auto-synced). */
  images?: ImageEntry[];
}

/** A planned removal and the lock that guards it. */
interface Planned extends PruneItem {
  /** Base name whose lock must be free; undefined: no lock needed (trash). */
  lock?: string;
  /** `tree`: a store tree (renamed away first); `archive`: its stamp goes too; `leftover`. */
  kind: "archive" | "tree" | "leftover";
}

/**
 * Removes orphan archives and trees, `.part` files, staging trees and trash, and with `keep` the
 * copies of all but the `keep` newest versions of each image present. Only copies the tool
 * provably made are candidates (trees with a marker, archives with a matching pulled-as record
 * or digest): a user's files are never removed. Items an image lock guards are removed only when
 * that lock is free (a running pull keeps its `.part` and staging tree).
 *
 * @throws AxError when the registry lists no images: it cannot say what is an orphan.
 */
export async function prune(config: Config, options: PruneOptions = {}): Promise<PruneResult> {
  const store = config.localStorage;
  const images = options.images ?? (await openRegistry(config, options));
  if (images.length === 0) {
    throw new AxError("prune refused: the store's registry lists no images", {
      hint: "an empty registry would make every image an orphan: run `axvisor-image sync` with a registry that lists them",
    });
  }
  // A registry from a fallback, or missing a registry, lists less than the real ones: it cannot
  // say what is an orphan.
  const incomplete = options.images ? undefined : await readIncompleteMark(store);
  if (incomplete) {
    (options.logger ?? silentLogger).warn(
      `the store's registry is incomplete (${incomplete}): only leftovers of interrupted work are pruned; sync with every registry reachable to prune images`,
    );
  }
  const dirs = storeDirs(store, config.extractDir);
  const inventory = await scanStore(dirs, images, { sizes: true, prove: true });
  const ours = inventory.copies.filter((c) => c.proven);
  const owned = incomplete === undefined;
  const plan: Planned[] = [
    ...(owned ? ours.filter((c) => c.orphan).map((c) => planCopy(c, "orphan")) : []),
    ...(owned && options.keep !== undefined ? oldVersions(ours, options.keep) : []),
    ...inventory.leftovers.map(planLeftover),
  ].sort((a, b) => (a.path < b.path ? -1 : 1));
  const result: PruneResult = { removed: [], skipped: [], freed: 0 };
  const done = (item: Planned) => {
    result.removed.push({ path: item.path, bytes: item.bytes, reason: item.reason });
    result.freed += item.bytes;
  };
  if (options.dryRun) {
    plan.forEach(done);
    return result;
  }
  for (const [lock, items] of groupBy(plan, (p) => p.lock)) {
    const removeAll = async () => {
      for (const item of items) {
        await removeItem(dirs, item);
        done(item);
      }
    };
    if (lock === undefined) await removeAll();
    else if (!(await tryWithLock(store, lock, removeAll, options))) {
      (options.logger ?? silentLogger).warn(`${lock}: in use by another process; left alone`);
      result.skipped.push(...items.map(({ path, bytes, reason }) => ({ path, bytes, reason })));
    }
  }
  result.removed.sort((a, b) => (a.path < b.path ? -1 : 1));
  return result;
}

function planCopy(copy: StoredCopy, reason: PruneReason): Planned {
  return { path: copy.path, bytes: copy.bytes, reason, lock: copy.baseName, kind: copy.kind };
}

function planLeftover(leftover: Leftover): Planned {
  const { path, bytes, kind, baseName } = leftover;
  return { path, bytes, reason: kind, lock: baseName, kind: "leftover" };
}

/** The copies of every version past the `keep` newest present of each image. */
function oldVersions(copies: StoredCopy[], keep: number): Planned[] {
  const owned = copies.filter((c) => c.entry !== undefined && !c.orphan);
  const planned: Planned[] = [];
  for (const group of groupBy(owned, (c) => c.entry!.name).values()) {
    const versions = [...new Set(group.map((c) => c.entry!))].sort(compareNewestFirst);
    const old = new Set(versions.slice(keep));
    for (const copy of group) if (old.has(copy.entry!)) planned.push(planCopy(copy, "old-version"));
  }
  return planned;
}

async function removeItem(dirs: StoreDirs, item: Planned): Promise<void> {
  if (item.kind === "tree") await removeTree(dirs.trees, item.path);
  else if (item.kind === "archive") await removeArchive(item.path);
  else {
    try {
      await rm(item.path, { recursive: true, force: true });
    } catch (err) {
      throw fsError(err, "remove", item.path);
    }
  }
}
