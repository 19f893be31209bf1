/**
 * `du` (`ls --local`): what the store holds and how much disk it takes, without any network
 * access or sync.
 */
import type { Config } from "../config/config.js";
import { formatSpec } from "../registry/resolve.js";
import { storeDirs } from "../store/layout.js";
import { readRegistryState } from "../store/state.js";
import { groupBy } from "../group-by.js";
import { diskUsage, scanStore, type Leftover, type StoredCopy } from "../store/scan.js";

/** The archive and tree of one base name (`NAME` or `NAME-VERSION`) in the store. */
export interface StoredImage {
  /** How it was pulled (`NAME` or `NAME:VERSION`), or the base name when no image owns it. */
  image: string;
  /** The registry version it holds (of the tree, else of the archive), when known. */
  version?: string;
  /**
   * True when no registry entry owns any of its copies (`prune` removes those the tool provably
   * made: trees with a marker, archives it pulled).
   */
  orphan: boolean;
  /** The archive file, if present (the first one, should several extensions be present). */
  archive?: string;
  /** The extracted tree, if present. */
  tree?: string;
  /** Disk usage of its archive(s). */
  archiveBytes: number;
  /** Disk usage of its tree. */
  treeBytes: number;
}

/** What {@link storeUsage} found. */
export interface StoreUsage {
  /** The store directory. */
  store: string;
  /** One per base name, sorted by {@link StoredImage.image}. */
  images: StoredImage[];
  /** `.part` files, staging trees and trash (`prune` removes them). */
  leftovers: Leftover[];
  /** Where the trees are, when not in the store (`-E`). */
  extractDir?: string;
  /** Disk usage of the whole store (and extract directory), bookkeeping included. */
  totalBytes: number;
}

/**
 * The images in the store and their disk usage, read against the store's registry as it is (no
 * sync: without a registry every image shows as an orphan).
 */
export async function storeUsage(config: Config): Promise<StoreUsage> {
  const dirs = storeDirs(config.localStorage, config.extractDir);
  const { store } = dirs;
  const state = await readRegistryState(store);
  const inventory = await scanStore(dirs, state.kind === "ok" ? state.images : [], {
    sizes: true,
  });
  const images = [...groupBy(inventory.copies, (c) => c.baseName)]
    .map(([base, copies]) => storedImage(base, copies))
    .sort((a, b) => (a.image < b.image ? -1 : 1));
  const totalBytes =
    (await diskUsage(store)) + (dirs.trees === store ? 0 : await diskUsage(dirs.trees));
  const usage: StoreUsage = { store, images, leftovers: inventory.leftovers, totalBytes };
  if (dirs.trees !== store) usage.extractDir = dirs.trees;
  return usage;
}

function storedImage(baseName: string, copies: StoredCopy[]): StoredImage {
  const archives = copies.filter((c) => c.kind === "archive");
  const tree = copies.find((c) => c.kind === "tree");
  const spec = copies.find((c) => c.spec)?.spec;
  const version = (tree?.entry ?? archives.find((a) => a.entry)?.entry)?.version;
  const image: StoredImage = {
    image: spec ? formatSpec(spec) : baseName,
    orphan: copies.every((c) => c.orphan),
    archiveBytes: archives.reduce((sum, a) => sum + a.bytes, 0),
    treeBytes: tree?.bytes ?? 0,
  };
  if (version !== undefined) image.version = version;
  if (archives[0]) image.archive = archives[0].path;
  if (tree) image.tree = tree.path;
  return image;
}
