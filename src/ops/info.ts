/**
 * `info` and `path`: what the registry has of one image and what of it is in the store.
 */
import type { Config } from "../config/config.js";
import { AxError } from "../errors.js";
import { compareNewestFirst, findImage, formatSpec, resolveImage } from "../registry/resolve.js";
import type { ImageEntry, ImageSpec } from "../registry/types.js";
import { StoreNames, imageBaseName, imageFilePath, storeDirs, treePath } from "../store/layout.js";
import { readProvenance, type Provenance } from "../store/provenance.js";
import { readRegistryState } from "../store/state.js";
import { readMarker, regularFileAt } from "../store/copies.js";
import { localState, scanStore, type LocalState } from "../store/scan.js";
import { openRegistry } from "./open-registry.js";
import type { OperationOptions } from "./options.js";

/** One version of an image, with its local state. */
export interface VersionInfo {
  /** The registry entry. */
  entry: ImageEntry;
  /** True for the version `NAME` alone stands for (the latest `released_at`). */
  latest: boolean;
  /** Where it is in the store, and how big. */
  local: LocalState;
  /** Where the store's registry got it from, when it has a record of that. */
  provenance?: Provenance;
}

/** Options of {@link imageInfo}. */
export interface InfoOptions extends OperationOptions {
  /** The registry to read (default: the store's, auto-synced). */
  images?: ImageEntry[];
}

/**
 * Every version the registry has of `spec.name` (only `spec.version` when given), newest first,
 * each with where it is in the store and its disk usage.
 *
 * @throws AxError naming the image (with a "did you mean" hint) when the registry has no such
 *   image or version, or when its store name is refused ({@link StoreNames}).
 */
export async function imageInfo(
  config: Config,
  spec: ImageSpec,
  options: InfoOptions = {},
): Promise<VersionInfo[]> {
  const images = options.images ?? (await openRegistry(config, options));
  resolveImage(images, spec);
  StoreNames.of(images).baseName(spec);
  const latest = findImage(images, { name: spec.name });
  const versions = images
    .filter(
      (e) => e.name === spec.name && (spec.version === undefined || e.version === spec.version),
    )
    .sort(compareNewestFirst);
  const dirs = storeDirs(config.localStorage, config.extractDir);
  const inventory = await scanStore(dirs, images, { sizes: true, name: spec.name });
  const provenance = options.images ? undefined : await readProvenance(dirs.store);
  return versions.map((entry) => {
    const info: VersionInfo = {
      entry,
      latest: entry === latest,
      local: localState(inventory, entry),
    };
    const record = provenance?.of(entry);
    if (record) info.provenance = record;
    return info;
  });
}

/** Where {@link imagePath} found an image. */
export interface PathResult {
  /** The extracted tree (absolute). */
  path: string;
  /**
   * The file named like the image at the top of the tree, when there is one (a single-file
   * archive's file, such as a tgosimages rootfs `.img`).
   */
  file?: string;
  /**
   * Set when the tree is not what the registry says `spec` stands for: it holds an older
   * version, or its marker differs from the entry's sha256. A one-line explanation.
   */
  stale?: string;
}

/**
 * The extracted tree of `spec` already in the store, without any network access or sync: for
 * `NAME:VERSION`, `<store>/NAME-VERSION`, or `<store>/NAME` when that holds this version; for
 * `NAME`, the tree holding the registry's latest version (`<store>/NAME` first), else
 * `<store>/NAME` whatever version it holds (reported as stale). Only trees with a marker (a
 * completed pull) count. Paths come from the store's one mapping of names ({@link StoreNames}).
 *
 * @throws AxError naming the image, with a hint to pull it, when no such tree exists, or when its
 *   store name is refused.
 */
export async function imagePath(config: Config, spec: ImageSpec): Promise<PathResult> {
  const { store, trees } = storeDirs(config.localStorage, config.extractDir);
  const state = await readRegistryState(store);
  const images = state.kind === "ok" ? state.images : [];
  const names = StoreNames.of(images);
  const own = treePath(trees, names.baseName(spec));
  const entry = findImage(images, spec);
  /** The tree `other` is also pulled as, when its store name is not refused. */
  const alsoAs = (other: ImageSpec) =>
    names.problem(other) === undefined ? [treePath(trees, names.baseName(other))] : [];
  const unversioned = treePath(trees, imageBaseName({ name: spec.name }));
  const candidates: { path: string; wanted: boolean }[] = [];
  if (spec.version !== undefined) {
    candidates.push({ path: own, wanted: true });
    if (entry)
      candidates.push(...alsoAs({ name: spec.name }).map((path) => ({ path, wanted: false })));
  } else {
    candidates.push({ path: own, wanted: entry === undefined });
    if (entry) {
      const latest = { name: entry.name, version: entry.version };
      candidates.push(...alsoAs(latest).map((path) => ({ path, wanted: false })));
    }
  }
  let fallback: PathResult | undefined;
  for (const { path, wanted } of candidates) {
    const marker = await readMarker(path);
    if (marker === undefined) continue;
    if (entry === undefined || marker === entry.sha256) return withFile({ path }, spec.name);
    if (wanted || (path === unversioned && spec.version === undefined)) {
      fallback ??= { path, stale: staleReason(images, spec, entry, marker) };
    }
  }
  if (fallback) return withFile(fallback, spec.name);
  const image = formatSpec(spec);
  const other = await pulledVersion(trees, names, images, spec);
  throw new AxError(`image ${image} is not pulled into ${trees}`, {
    hint:
      other === undefined
        ? `run \`axvisor-image pull ${image}\``
        : `${other} is pulled: run \`axvisor-image path ${other}\`, or \`axvisor-image pull ${image}\``,
  });
}

/**
 * The newest version of `spec.name` other than `spec`'s that is pulled as `NAME:VERSION` (a tree
 * with a marker in `trees`), as `NAME:VERSION`; undefined when there is none.
 */
async function pulledVersion(
  trees: string,
  names: StoreNames,
  images: readonly ImageEntry[],
  spec: ImageSpec,
): Promise<string | undefined> {
  const versions = images
    .filter((e) => e.name === spec.name && e.version !== spec.version)
    .sort(compareNewestFirst);
  for (const { name, version } of versions) {
    const other = { name, version };
    if (names.problem(other) !== undefined) continue;
    if ((await readMarker(treePath(trees, names.baseName(other)))) !== undefined) {
      return formatSpec(other);
    }
  }
  return undefined;
}

/**
 * The file of a pulled image's tree (`found`: a {@link PathResult}, or a pull's result), named like
 * the image (`name`) at its top.
 *
 * @throws AxError naming the image (`image`, as asked for) when its tree has no such file.
 */
export function treeFileOf(found: { path: string; file?: string }, image: string, name: string) {
  if (found.file !== undefined) return found.file;
  throw new AxError(`image ${image} has no file named ${name} at the top of its tree`, {
    hint: `it is not a single-file image: its tree is ${found.path}`,
  });
}

/** `found` with the file named `name` at the top of its tree, when it has one. */
async function withFile(found: PathResult, name: string): Promise<PathResult> {
  const file = await regularFileAt(imageFilePath(found.path, name));
  return file === undefined ? found : { ...found, file };
}

function staleReason(
  images: readonly ImageEntry[],
  spec: ImageSpec,
  entry: ImageEntry,
  marker: string,
): string {
  const held = images.find((e) => e.name === spec.name && e.sha256 === marker);
  const image = formatSpec(spec);
  if (held && spec.version === undefined) {
    return (
      `${image} in the store is version ${held.version}; the registry's latest is ` +
      `${entry.version} (run \`axvisor-image pull ${image}\` to update)`
    );
  }
  return (
    `${image} in the store does not match the registry entry ` +
    `(run \`axvisor-image verify ${image}\`)`
  );
}
