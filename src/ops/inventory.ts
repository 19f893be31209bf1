/**
 * What a store holds: every archive and extracted tree, which registry entry owns each, and the
 * leftovers of interrupted work (`.part` downloads, staging trees, trash). `info`, `ls --json`,
 * `du`, `verify` and `prune` all read the store through {@link scanStore}.
 */
import { lstat, readdir } from "node:fs/promises";
import { join } from "node:path";
import { fsError, hasCode } from "../errors.js";
import type { ImageEntry, ImageSpec } from "../registry/types.js";
import { ARCHIVE_EXTENSIONS, bookkeeping, imageBaseName } from "../store/layout.js";
import { archiveDigest } from "../store/stamps.js";
import { readMarker } from "../store/tree.js";

/** One archive file or extracted tree in the store. */
export interface StoredCopy {
  /** An archive file, or an extracted tree (a directory). */
  kind: "archive" | "tree";
  /** Absolute path. */
  path: string;
  /** `<name>` or `<name>-<version>`: the tree's name, or the archive's without its extension. */
  baseName: string;
  /**
   * How it was pulled (`NAME` or `NAME:VERSION`), when a registry image owns the base name;
   * undefined for a file or tree no registry image owns.
   */
  spec?: ImageSpec;
  /**
   * The registry entry this copy holds: for `NAME:VERSION`, that entry; for `NAME`, the entry of
   * that name whose sha256 the tree's marker (or the archive's digest) records. Undefined when
   * unknown (a tree without a marker) or when no entry matches.
   */
  entry?: ImageEntry;
  /**
   * True when no registry entry owns the copy: no image has its base name, or it was pulled as
   * `NAME` and holds a version the registry no longer lists.
   */
  orphan: boolean;
  /** Trees only: the sha256 in the tree's marker, undefined when it has none. */
  marker?: string;
  /** Disk usage in bytes when scanned with `sizes`, else 0. */
  bytes: number;
}

/** Leftovers of interrupted work, which `prune` removes. */
export interface Leftover {
  /** `part`: an interrupted download (or its resume metadata); `staging`: a half-extracted tree
   *  of a killed process; `trash`: a tree whose deletion was interrupted. */
  kind: "part" | "staging" | "trash";
  /** Absolute path. */
  path: string;
  /** The base name whose lock guards it; undefined for trash, which nothing uses. */
  baseName?: string;
  /** Disk usage in bytes when scanned with `sizes`, else 0. */
  bytes: number;
}

/** Everything {@link scanStore} found. */
export interface Inventory {
  /** The store directory. */
  store: string;
  /** Archives and trees, sorted by path. */
  copies: StoredCopy[];
  /** `.part` files, staging trees, trash, sorted by path. */
  leftovers: Leftover[];
}

/** Options of {@link scanStore}. */
export interface ScanOptions {
  /** Measure the disk usage of every item (a walk of every tree). */
  sizes?: boolean;
}

/** The local state of one registry entry: where its archive and tree are, and their size. */
export interface LocalState {
  /** The archive holding this version, preferring the one pulled as `NAME:VERSION`. */
  archive?: string;
  /** The tree holding this version, preferring the one pulled as `NAME:VERSION`. */
  tree?: string;
  /** Disk usage of that archive and tree together. */
  bytes: number;
}

const PART_SUFFIXES = [".part", ".part.json"];
const STAGING_NAME = /^(.+)\.\d+\.[0-9a-f]{8}$/;

/**
 * Disk usage of `path` in bytes (allocated blocks, as `du` counts them: holes of sparse files
 * are free, each hard-linked inode counts once). Zero when `path` does not exist.
 */
export async function diskUsage(path: string): Promise<number> {
  const seen = new Set<string>();
  const walk = async (p: string): Promise<number> => {
    let st;
    try {
      st = await lstat(p);
    } catch (err) {
      if (hasCode(err, "ENOENT")) return 0;
      throw fsError(err, "read", p);
    }
    const id = `${st.dev}:${st.ino}`;
    if (seen.has(id)) return 0;
    seen.add(id);
    let total = st.blocks * 512;
    if (st.isDirectory()) {
      const names = await readdir(p).catch(() => [] as string[]);
      const sizes = await Promise.all(names.map((name) => walk(join(p, name))));
      total += sizes.reduce((a, b) => a + b, 0);
    }
    return total;
  };
  return walk(path);
}

/** The base name of an archive file name, or undefined when it is not one. */
function archiveBase(fileName: string): string | undefined {
  const ext = ARCHIVE_EXTENSIONS.find((e) => fileName.endsWith(e) && fileName.length > e.length);
  return ext === undefined ? undefined : fileName.slice(0, -ext.length);
}

/** Who may own a base name: registry entries by `<name>-<version>`, and by `<name>`. */
class Owners {
  private readonly byVersion = new Map<string, ImageEntry>();
  private readonly byName: Map<string, ImageEntry[]>;

  constructor(images: readonly ImageEntry[]) {
    for (const entry of images) {
      const key = imageBaseName(entry);
      if (!this.byVersion.has(key)) this.byVersion.set(key, entry);
    }
    this.byName = groupBy(images, (e) => e.name);
  }

  /** The spec a base name was pulled as, and the entry it names when it carries a version. */
  specOf(baseName: string): { spec: ImageSpec; entry?: ImageEntry } | undefined {
    const versioned = this.byVersion.get(baseName);
    if (versioned)
      return { spec: { name: versioned.name, version: versioned.version }, entry: versioned };
    return this.byName.has(baseName) ? { spec: { name: baseName } } : undefined;
  }

  /** The entry named `name` whose archive has digest `sha256`. */
  bySha(name: string, sha256: string | undefined): ImageEntry | undefined {
    if (sha256 === undefined) return undefined;
    return this.byName.get(name)?.find((e) => e.sha256 === sha256);
  }
}

/**
 * Scans the store `store` against the registry `images`. Directories count as trees when they
 * have a marker or when a registry image owns their name (other directories are left out: they
 * are not ours). Archives pulled as `NAME` are identified by their digest, read from the
 * verified-file stamp (an archive without a valid stamp is hashed once, and stamped).
 */
export async function scanStore(
  store: string,
  images: readonly ImageEntry[],
  options: ScanOptions = {},
): Promise<Inventory> {
  const owners = new Owners(images);
  let dirents;
  try {
    dirents = await readdir(store, { withFileTypes: true });
  } catch (err) {
    if (hasCode(err, "ENOENT")) return { store, copies: [], leftovers: [] };
    throw fsError(err, "read", store);
  }
  const copies: StoredCopy[] = [];
  const leftovers: Leftover[] = [];
  const archiveNames = new Set<string>();
  for (const d of dirents) {
    if (!d.isFile()) continue;
    const suffix = PART_SUFFIXES.find((s) => d.name.endsWith(s));
    const base = archiveBase(suffix === undefined ? d.name : d.name.slice(0, -suffix.length));
    if (base === undefined) continue;
    const path = join(store, d.name);
    if (suffix !== undefined) {
      leftovers.push({ kind: "part", path, baseName: base, bytes: 0 });
      continue;
    }
    archiveNames.add(base);
    copies.push(await identify("archive", path, base, owners));
  }
  for (const d of dirents) {
    if (!d.isDirectory() || d.name.startsWith(".")) continue; // .axvisor-image is bookkeeping
    const path = join(store, d.name);
    const marker = await readMarker(path);
    if (marker === undefined && !archiveNames.has(d.name) && !owners.specOf(d.name)) continue;
    const copy = await identify("tree", path, d.name, owners, marker);
    if (copy.entry === undefined && marker === undefined && copy.spec?.version === undefined) {
      // a tree without a marker pulled as NAME: it holds what its archive holds, if anything
      const archive = copies.find((c) => c.kind === "archive" && c.baseName === d.name);
      if (archive?.entry) copy.entry = archive.entry;
    }
    copies.push(copy);
  }
  leftovers.push(...(await bookkeepingLeftovers(store)));
  if (options.sizes) {
    await Promise.all(
      [...copies, ...leftovers].map(async (item) => {
        item.bytes = await diskUsage(item.path);
      }),
    );
  }
  const byPath = (a: { path: string }, b: { path: string }) => (a.path < b.path ? -1 : 1);
  return { store, copies: copies.sort(byPath), leftovers: leftovers.sort(byPath) };
}

async function identify(
  kind: StoredCopy["kind"],
  path: string,
  baseName: string,
  owners: Owners,
  marker?: string,
): Promise<StoredCopy> {
  const owner = owners.specOf(baseName);
  const copy: StoredCopy = { kind, path, baseName, orphan: owner === undefined, bytes: 0 };
  if (marker !== undefined) copy.marker = marker;
  if (!owner) return copy;
  copy.spec = owner.spec;
  if (owner.entry) {
    copy.entry = owner.entry;
    return copy;
  }
  const digest = kind === "tree" ? marker : await archiveDigest(path);
  const entry = owners.bySha(baseName, digest);
  if (entry) copy.entry = entry;
  else copy.orphan = digest !== undefined;
  return copy;
}

async function bookkeepingLeftovers(store: string): Promise<Leftover[]> {
  const { staging, trash } = bookkeeping(store);
  const list = (dir: string) => readdir(dir).catch(() => [] as string[]);
  const found: Leftover[] = [];
  for (const name of await list(staging)) {
    const baseName = STAGING_NAME.exec(name)?.[1];
    if (baseName !== undefined) {
      found.push({ kind: "staging", path: join(staging, name), baseName, bytes: 0 });
    }
  }
  for (const name of await list(trash)) {
    found.push({ kind: "trash", path: join(trash, name), bytes: 0 });
  }
  return found;
}

/** `items` grouped by `key`, groups and items in first-seen order (`Map.groupBy` needs Node 21). */
export function groupBy<T, K>(items: readonly T[], key: (item: T) => K): Map<K, T[]> {
  const groups = new Map<K, T[]>();
  for (const item of items) {
    const k = key(item);
    const group = groups.get(k);
    if (group) group.push(item);
    else groups.set(k, [item]);
  }
  return groups;
}

/** True when `copy` holds `entry`. */
function holds(copy: StoredCopy, entry: ImageEntry): boolean {
  return copy.entry?.name === entry.name && copy.entry.version === entry.version;
}

/**
 * Where `entry` is in the store: its archive and tree (those pulled as `NAME:VERSION` first, then
 * those pulled as `NAME`) and their disk usage (measured only if the inventory was).
 */
export function localState(inventory: Inventory, entry: ImageEntry): LocalState {
  const pick = (kind: StoredCopy["kind"]) =>
    inventory.copies
      .filter((c) => c.kind === kind && holds(c, entry))
      .sort(
        (a, b) => Number(b.spec?.version !== undefined) - Number(a.spec?.version !== undefined),
      )[0];
  const archive = pick("archive");
  const tree = pick("tree");
  const state: LocalState = { bytes: (archive?.bytes ?? 0) + (tree?.bytes ?? 0) };
  if (archive) state.archive = archive.path;
  if (tree) state.tree = tree.path;
  return state;
}
