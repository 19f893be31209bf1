/**
 * The store scanner: what a store holds, every archive and extracted tree, which registry entry
 * owns each, and the leftovers of interrupted work (`.part` downloads, staging trees, trash).
 * `info`, `ls --json`, `du`, `verify` and `prune` all read the store through {@link scanStore}.
 */
import type { Dirent } from "node:fs";
import { lstat, readdir } from "node:fs/promises";
import { join } from "node:path";
import { fsError, hasCode } from "../errors.js";
import { groupBy } from "../group-by.js";
import { compareReleases } from "../registry/resolve.js";
import type { ImageEntry, ImageSpec } from "../registry/types.js";
import {
  StoreNames,
  bookkeeping,
  imageBaseName,
  isUploadSessionName,
  reservedNameProblem,
  stagingBaseName,
  storeFileKind,
  type Owner,
  type StoreDirs,
} from "./layout.js";
import { readPulledAs, recordSpec, type PulledAs } from "./records.js";
import { archiveDigest } from "./stamps.js";
import { bookkeepingNames, readMarker } from "./copies.js";

/** One archive file or extracted tree in the store. */
export interface StoredCopy {
  /** An archive file, or an extracted tree (a directory). */
  kind: "archive" | "tree";
  /** Absolute path. */
  path: string;
  /** `<name>` or `<name>-<version>`: the tree's name, or the archive's without its extension. */
  baseName: string;
  /**
   * How it was pulled (`NAME` or `NAME:VERSION`): what its pulled-as record says, else the
   * registry image whose store name it has. Undefined when neither says (no registry image has
   * that name, or several would: see `StoreNames`).
   */
  spec?: ImageSpec;
  /**
   * The registry entry this copy holds: the one its pulled-as record names (when the registry
   * no longer lists that version, the newest entry of the name with the same sha256); without a
   * record, for `NAME:VERSION` that entry, for `NAME` the newest entry of that name whose sha256
   * the tree's marker (or the archive's digest) records. Undefined when unknown (a tree without
   * a marker) or when no entry matches.
   */
  entry?: ImageEntry;
  /**
   * True when no registry entry owns the copy: no image has its base name and no record names
   * one the registry lists, or it holds a version the registry no longer lists.
   */
  orphan: boolean;
  /**
   * True when this tool (or the Rust tool) provably made it, the only copies `prune` removes: a
   * tree with a marker; an archive whose digest is what its pulled-as record says, its entry's
   * sha256, or its tree's marker. Archives without a record are only proven when scanned with
   * `prove` (their digest is needed).
   */
  proven: boolean;
  /** Trees only: the sha256 in the tree's marker, undefined when it has none. */
  marker?: string;
  /** Disk usage in bytes when scanned with `sizes`, else 0. */
  bytes: number;
}

/** Leftovers of interrupted work, which `prune` removes. */
export interface Leftover {
  /** `part`: an interrupted download (or its resume metadata); `staging`: a half-extracted tree
   *  of a killed process; `trash`: a tree whose deletion was interrupted; `upload`: the saved
   *  session of an upload to an OCI registry that was cut (`mirror --to oci://`). */
  kind: "part" | "staging" | "trash" | "upload";
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
  /** Where the trees are: the store, or the extract directory. */
  trees: string;
  /** Archives and trees, sorted by path. */
  copies: StoredCopy[];
  /** `.part` files, staging trees, trash, sorted by path. */
  leftovers: Leftover[];
}

/** Options of {@link scanStore}. */
export interface ScanOptions {
  /** Measure the disk usage of every item (a walk of every tree). */
  sizes?: boolean;
  /** Decide {@link StoredCopy.proven} for every archive (hashing those without a valid stamp). */
  prove?: boolean;
  /** Only the copies that may hold image `name` (by record, else by store name). */
  name?: string;
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

/**
 * Disk usage of `path` in bytes (allocated blocks, as `du` counts them: holes of sparse files
 * are free, each hard-linked inode counts once). Zero when `path` does not exist.
 */
export async function diskUsage(path: string): Promise<number> {
  const seen = new Set<string>();
  const slash = Buffer.from("/");
  // Paths as bytes: a name that is not UTF-8 (a tree from another system) is still counted.
  const walk = async (p: Buffer): Promise<number> => {
    let st;
    try {
      st = await lstat(p);
    } catch (err) {
      if (hasCode(err, "ENOENT")) return 0;
      throw fsError(err, "read", p.toString());
    }
    const id = `${st.dev}:${st.ino}`;
    if (seen.has(id)) return 0;
    seen.add(id);
    let total = st.blocks * 512;
    if (st.isDirectory()) {
      const names = await readdir(p, { encoding: "buffer" }).catch(() => [] as Buffer[]);
      const sizes = await Promise.all(names.map((name) => walk(Buffer.concat([p, slash, name]))));
      total += sizes.reduce((a, b) => a + b, 0);
    }
    return total;
  };
  return walk(Buffer.from(path));
}

/** The registry's entries by name, for attributing copies. */
class Entries {
  private readonly byName: Map<string, ImageEntry[]>;

  constructor(images: readonly ImageEntry[]) {
    this.byName = groupBy(images, (e) => e.name);
  }

  /** The entry `name:version`. */
  exact(name: string, version: string): ImageEntry | undefined {
    return this.byName.get(name)?.find((e) => e.version === version);
  }

  /**
   * The newest entry named `name` whose archive has digest `sha256`: a registry may release one
   * archive under several versions, and a copy that cannot say which it was pulled as must never
   * look older than it may be (`prune --keep` would remove it).
   */
  newestWithSha(name: string, sha256: string | undefined): ImageEntry | undefined {
    if (sha256 === undefined) return undefined;
    let newest: ImageEntry | undefined;
    for (const e of this.byName.get(name) ?? []) {
      if (e.sha256 === sha256 && (newest === undefined || compareReleases(e, newest) > 0)) {
        newest = e;
      }
    }
    return newest;
  }
}

/** What the scan found out about one tree before attributing it. */
interface TreeFacts {
  path: string;
  marker?: string;
  record?: PulledAs;
  owner?: Owner;
}

/**
 * Scans the store `dirs` (its archives, and its trees where they are) against the registry `images`. A directory counts as a tree when it
 * has a marker or a registry image's store name; an archive counts when a
 * registry image has its store name or the tool provably made it (other directories and files
 * are left out: they are not ours). Each copy is attributed by its pulled-as record, else by its
 * store name (`NAME` archives by their digest, read from the verified-file stamp or hashed once).
 */
export async function scanStore(
  dirs: StoreDirs,
  images: readonly ImageEntry[],
  options: ScanOptions = {},
): Promise<Inventory> {
  const { store } = dirs;
  // Built on first use: a store without copies (the usual `ls` on a big registry) needs neither.
  let names: StoreNames | undefined;
  let entries: Entries | undefined;
  const namesOf = () => (names ??= StoreNames.of(images));
  const entriesOf = () => (entries ??= new Entries(images));
  const [dirents, treeDirents] = await Promise.all(
    [store, dirs.trees].map((dir, i) => (i === 1 && dir === store ? undefined : listDir(dir))),
  );
  const wanted = (owner: Owner | undefined, record: PulledAs | undefined) =>
    options.name === undefined ||
    (record?.name ?? (owner?.kind === "image" ? owner.spec.name : undefined)) === options.name;
  const trees = new Map<string, TreeFacts>();
  for (const d of treeDirents ?? dirents!) {
    if (!d.isDirectory() || reservedNameProblem(d.name) !== undefined) continue;
    const path = join(dirs.trees, d.name);
    const facts: TreeFacts = { path, owner: namesOf().owner(d.name) };
    const [marker, record] = await Promise.all([readMarker(path), readPulledAs(path)]);
    if (marker !== undefined) facts.marker = marker;
    if (record !== undefined) facts.record = record;
    if (marker === undefined && !facts.owner) continue;
    if (wanted(facts.owner, record)) trees.set(d.name, facts);
  }
  const copies: StoredCopy[] = [];
  const leftovers: Leftover[] = [];
  for (const d of dirents!) {
    const file = d.isFile() ? storeFileKind(d.name) : undefined;
    if (file === undefined) continue;
    const path = join(store, d.name);
    if (file.kind === "part") {
      leftovers.push({ kind: "part", path, baseName: file.baseName, bytes: 0 });
      continue;
    }
    const copy = await scanArchive(
      path,
      file.baseName,
      namesOf(),
      entriesOf(),
      trees,
      options,
      wanted,
    );
    if (copy) copies.push(copy);
  }
  for (const [baseName, facts] of trees) {
    const copy = attribute("tree", facts.path, baseName, facts, facts.marker, entriesOf());
    if (facts.marker !== undefined) {
      copy.marker = facts.marker;
      copy.proven = true;
    } else if (copy.entry === undefined && copy.spec?.version === undefined) {
      // a tree without a marker pulled as NAME: it holds what its archive holds, if anything
      const archive = copies.find((c) => c.kind === "archive" && c.baseName === baseName);
      if (archive?.entry) copy.entry = archive.entry;
    }
    copies.push(copy);
  }
  for (const dir of new Set([store, dirs.trees])) {
    leftovers.push(...(await bookkeepingLeftovers(dir)));
  }
  if (options.sizes) {
    await Promise.all(
      [...copies, ...leftovers].map(async (item) => {
        item.bytes = await diskUsage(item.path);
      }),
    );
  }
  const byPath = (a: { path: string }, b: { path: string }) => (a.path < b.path ? -1 : 1);
  return {
    store,
    trees: dirs.trees,
    copies: copies.sort(byPath),
    leftovers: leftovers.sort(byPath),
  };
}

/** The entries of `dir`; none when it does not exist (a store or extract directory not made yet). */
async function listDir(dir: string): Promise<Dirent[]> {
  try {
    return await readdir(dir, { withFileTypes: true });
  } catch (err) {
    if (hasCode(err, "ENOENT")) return [];
    throw fsError(err, "read", dir);
  }
}

/**
 * The archive `path`, attributed, or undefined when it is not ours: no registry image has its
 * store name and nothing proves the tool made it (a record, or its tree's marker).
 */
async function scanArchive(
  path: string,
  baseName: string,
  names: StoreNames,
  entries: Entries,
  trees: ReadonlyMap<string, TreeFacts>,
  options: ScanOptions,
  wanted: (owner: Owner | undefined, record: PulledAs | undefined) => boolean,
): Promise<StoredCopy | undefined> {
  const owner = names.owner(baseName);
  const record = await readPulledAs(path);
  const sibling = trees.get(baseName)?.marker;
  if (!wanted(owner, record)) return undefined;
  if (!owner && !record && sibling === undefined) return undefined;
  const needsDigest =
    record !== undefined ||
    !owner ||
    (owner.kind === "image" && owner.spec.version === undefined) ||
    options.prove;
  const digest = needsDigest ? await archiveDigest(path) : undefined;
  const copy = attribute("archive", path, baseName, { owner, record }, digest, entries);
  copy.proven ||= digest !== undefined && (digest === copy.entry?.sha256 || digest === sibling);
  if (!owner && !copy.proven) return undefined;
  return copy;
}

/**
 * A copy attributed by its pulled-as `record` when that is valid (it records `sha256`, the
 * tree's marker or the archive's digest, and a spec whose store name is `baseName`), else by
 * `owner`, the registry image whose store name it has.
 */
function attribute(
  kind: StoredCopy["kind"],
  path: string,
  baseName: string,
  { owner, record }: { owner?: Owner; record?: PulledAs },
  sha256: string | undefined,
  entries: Entries,
): StoredCopy {
  const copy: StoredCopy = { kind, path, baseName, orphan: false, proven: false, bytes: 0 };
  if (record && record.sha256 === sha256 && imageBaseName(recordSpec(record)) === baseName) {
    copy.spec = recordSpec(record);
    const entry = entries.exact(record.name, record.version);
    const held =
      entry?.sha256 === record.sha256 ? entry : entries.newestWithSha(record.name, sha256);
    if (held) copy.entry = held;
    copy.orphan = held === undefined;
    copy.proven = true;
    return copy;
  }
  if (!owner) {
    copy.orphan = true;
    return copy;
  }
  if (owner.kind === "ambiguous") return copy;
  copy.spec = owner.spec;
  const { name, version } = owner.spec;
  const entry =
    version === undefined ? entries.newestWithSha(name, sha256) : entries.exact(name, version);
  if (entry) copy.entry = entry;
  else copy.orphan = sha256 !== undefined;
  return copy;
}

async function bookkeepingLeftovers(store: string): Promise<Leftover[]> {
  const { staging, trash, uploads } = bookkeeping(store);
  const found: Leftover[] = [];
  for (const name of await bookkeepingNames(staging)) {
    const baseName = stagingBaseName(name);
    if (baseName !== undefined) {
      found.push({ kind: "staging", path: join(staging, name), baseName, bytes: 0 });
    }
  }
  for (const name of await bookkeepingNames(trash)) {
    found.push({ kind: "trash", path: join(trash, name), bytes: 0 });
  }
  for (const name of await bookkeepingNames(uploads)) {
    if (isUploadSessionName(name)) {
      found.push({ kind: "upload", path: join(uploads, name), bytes: 0 });
    }
  }
  return found;
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
