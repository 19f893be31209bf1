/**
 * `lock` and the lock's checks: resolving images into the lock file, the locked entries a
 * `pull --locked` takes, and the loud error of a registry that disagrees with the lock.
 */
import type { Config } from "../config/config.js";
import { registryList } from "../config/registries.js";
import { AxError, UsageError } from "../errors.js";
import { silentLogger } from "../log.js";
import {
  lockedImage,
  lockedSpec,
  readLockFile,
  sortLocked,
  writeLockFile,
  type LockEntry,
} from "../registry/lock-file.js";
import { withoutCredentials } from "../registry/location.js";
import { findImage, formatSpec, resolveImage } from "../registry/resolve.js";
import type { ImageEntry, ImageSpec } from "../registry/types.js";
import { readProvenance } from "../store/provenance.js";
import { readRegistryState, readSyncSource } from "../store/state.js";
import { openRegistry } from "./open-registry.js";
import type { OperationOptions } from "./options.js";

/** Options of {@link lockImages}. */
export interface LockOptions extends OperationOptions {
  /** Move locked images to the registry's newest versions (and accept its sha256s). */
  update?: boolean;
}

/** One change `lock` made to the lock file. */
export interface LockChange {
  name: string;
  /** The locked version before, if the name was locked. */
  from?: string;
  /** The locked version now. */
  to: string;
}

/** What {@link lockImages} wrote. */
export interface LockResult {
  /** Every entry of the lock file, sorted. */
  entries: LockEntry[];
  /** Versions added or moved. */
  changes: LockChange[];
}

/** One locked entry the registry disagrees with: same name and version, another sha256. */
interface Conflict {
  locked: LockEntry;
  listed: ImageEntry;
}

/**
 * Resolves `specs` in the store's registry (auto-synced as usual) and writes them into the lock
 * file at `path`, keeping its other entries. `NAME` locks the newest version, unless the name is
 * locked already: then its locked versions are re-resolved and stay (`update` moves them). No
 * specs: every locked entry is re-resolved (and moved with `update`). A locked version the
 * registry lists with another sha256 is an error (unless `update`), and nothing is written.
 *
 * @throws UsageError when there are no specs and no lock file; AxError for a conflict, an image
 *   the registry does not list, or a lock file that cannot be read or written.
 */
export async function lockImages(
  config: Config,
  path: string,
  specs: readonly ImageSpec[],
  options: LockOptions = {},
): Promise<LockResult> {
  const existing = await readLockFile(path);
  if (existing === undefined && specs.length === 0) {
    throw new UsageError(`no lock file at ${path}`, {
      hint: "name the images to lock: `axvisor-image lock NAME[:VERSION]...`",
    });
  }
  const images = await openRegistry(config, options);
  const registry =
    (await readSyncSource(config.localStorage)) ?? registryList(config.registry).join(", ");
  const logger = options.logger ?? silentLogger;
  const provenance = await readProvenance(config.localStorage);
  const locked = new Map((existing ?? []).map((e) => [lockedSpec(e), e]));
  const changes: LockChange[] = [];
  const conflicts: Conflict[] = [];

  const lockEntry = (entry: ImageEntry, from?: string) => {
    const { name, version, sha256, arch, url } = entry;
    const before = locked.get(formatSpec(entry));
    if (before !== undefined && before.sha256 !== sha256 && !options.update) {
      conflicts.push({ locked: before, listed: entry });
      return;
    }
    if (before === undefined || before.sha256 !== sha256) changes.push({ name, from, to: version });
    const source = provenance?.of(entry)?.registry ?? registry;
    // The lock file is committed: no secret goes in it (a pull --locked then goes without it).
    const shared = withoutCredentials(url);
    if (shared !== url) {
      logger.warn(
        `${formatSpec(entry)}: the credentials in its URL are not written to the lock file`,
      );
    }
    locked.set(formatSpec(entry), {
      name,
      version,
      sha256,
      arch,
      url: shared,
      registry: source.split(", ").map(withoutCredentials).join(", "),
    });
  };
  const relockName = (name: string) => {
    const versions = [...locked.values()].filter((e) => e.name === name);
    if (!options.update) {
      for (const e of versions) lockEntry(resolveImage(images, e), e.version);
      return;
    }
    const newest = resolveImage(images, { name });
    const others = versions.filter((e) => e.version !== newest.version);
    for (const e of others) locked.delete(lockedSpec(e));
    lockEntry(newest, others[0]?.version ?? newest.version);
  };

  const names =
    specs.length > 0 ? specs : [...locked.values()].map((e): ImageSpec => ({ name: e.name }));
  for (const spec of names) {
    if (spec.version !== undefined) lockEntry(resolveImage(images, spec));
    else if ([...locked.values()].some((e) => e.name === spec.name)) relockName(spec.name);
    else lockEntry(resolveImage(images, spec));
  }
  if (conflicts.length > 0) throw conflictError(conflicts, registry);
  const entries = [...locked.values()];
  await writeLockFile(path, entries);
  return { entries: sortLocked(entries), changes: dedupe(changes) };
}

/** Each change once (a name re-resolved twice reports once). */
function dedupe(changes: LockChange[]): LockChange[] {
  const seen = new Map(changes.map((c) => [`${c.name}:${c.to}`, c]));
  return [...seen.values()];
}

/** The loud error of a registry that disagrees with the lock. */
function conflictError(conflicts: Conflict[], registry: string): AxError {
  const shown = conflicts.map(
    ({ locked, listed }) =>
      `${lockedSpec(locked)} is locked with sha256 ${locked.sha256} but lists ${listed.sha256}`,
  );
  return new AxError(`the registry ${registry} disagrees with the lock file: ${shown.join("; ")}`, {
    hint:
      "a version's archive must never change: ask the registry's publisher; " +
      "`axvisor-image lock --update NAME` accepts the registry's sha256",
  });
}

/**
 * Throws when the store's registry, if it has one (no sync, no network), lists a locked version
 * with another sha256.
 *
 * @throws AxError naming every conflicting entry.
 */
export async function checkStoreAgainstLock(
  config: Config,
  entries: readonly LockEntry[],
): Promise<void> {
  const state = await readRegistryState(config.localStorage);
  if (state.kind !== "ok") return;
  checkAgainstLock(state.images, entries, (await readSyncSource(config.localStorage)) ?? "");
}

/**
 * Throws when `images` (read from `registry`) lists a version of `entries` with another sha256.
 *
 * @throws AxError naming every conflicting entry.
 */
export function checkAgainstLock(
  images: readonly ImageEntry[],
  entries: readonly LockEntry[],
  registry: string,
): void {
  const conflicts: Conflict[] = [];
  for (const locked of entries) {
    const listed = findImage(images, locked);
    if (listed !== undefined && listed.sha256 !== locked.sha256) conflicts.push({ locked, listed });
  }
  if (conflicts.length > 0) throw conflictError(conflicts, registry || "in the store");
}

/**
 * The registry entries of the lock file at `path`, for a `pull --locked`: checked against the
 * store's registry when there is one.
 *
 * @throws AxError when there is no lock file, it cannot be read, or the store's registry
 *   disagrees with it.
 */
export async function lockedImages(config: Config, path: string): Promise<ImageEntry[]> {
  const entries = await readLockFile(path);
  if (entries === undefined) {
    throw new AxError(`no lock file at ${path}`, {
      hint: "write one with `axvisor-image lock NAME[:VERSION]...`, or name it with --lock FILE",
    });
  }
  await checkStoreAgainstLock(config, entries);
  return entries.map(lockedImage);
}
