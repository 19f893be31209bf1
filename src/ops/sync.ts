/**
 * `sync`: fetch the configured registries (each with its includes; its fallback when it cannot be
 * read), merge them in order and replace the store's `images.toml`, refusing an answer that looks
 * broken. A registry that fails keeps its last good copy while the others update. When keys are
 * pinned for a registry (`[[trust]]`) or signatures required, any file without a valid signature
 * by a pinned key, or older than the copy accepted before, fails the whole sync.
 */
import { linkedController } from "../concurrency.js";
import type { Config } from "../config/config.js";
import {
  DEFAULT_REGISTRY_BASE_URL,
  builtinNameOf,
  registryList,
  registrySources,
  type RegistrySource,
} from "../config/registries.js";
import { AxError } from "../errors.js";
import { count } from "../text.js";
import { silentLogger, type Logger } from "../log.js";
import type { LoadedRegistry } from "../registry/load.js";
import { isRemote, toLocation } from "../registry/location.js";
import type { AcceptedSignatures, SignaturePolicy } from "../registry/signature.js";
import { mergeImages, type ImageSource } from "../registry/merge.js";
import { formatSpec } from "../registry/resolve.js";
import type { ImageEntry } from "../registry/types.js";
import { SYNC_LOCK, bookkeeping } from "../store/layout.js";
import { withLock } from "../store/lock.js";
import {
  readProvenance,
  readRegistryCopy,
  writeProvenance,
  writeRegistryCopy,
  type Provenance,
  type ProvenanceGroup,
  type ProvenanceIndex,
  type ReadVia,
  type RegistryCopy,
} from "../store/provenance.js";
import {
  markSource,
  markTrust,
  readRegistryState,
  readSyncSource,
  writeRegistry,
} from "../store/state.js";
import { requireNetwork } from "./offline.js";
import type { OperationOptions } from "./options.js";

/** Options of {@link sync}. */
export interface SyncOptions extends OperationOptions {
  /** Accept a registry that lists no images (refused by default: it would orphan every image). */
  allowEmpty?: boolean;
  /**
   * Accept a registry that drops more than half of the image names its last good copy lists
   * (refused by default; implied by `allowEmpty`).
   */
  allowShrink?: boolean;
}

/** What a sync did with one configured registry. */
export interface RegistrySync {
  /** The registry as configured: a built-in name, or a URL or path. */
  registry: string;
  /** Its root file. */
  url: string;
  /**
   * How it was read: its own files, its fallback file, its last good copy (both failing);
   * `missing`: none of them, its images are not in the store's registry.
   */
  via: ReadVia | "missing";
  /** The file read: its root, its fallback, or (last good copy) its root at that sync. */
  source: string;
  /** Entries it gave, before the merge with the other registries. */
  images: number;
  /** Why its own files were not used, when they were not. */
  problem?: string;
}

/** What a sync did. */
export interface SyncResult {
  /** The file read for the first registry: the configured one, or its fallback. */
  source: string;
  /** True when a registry failed and its fallback was used. */
  usedFallback: boolean;
  /** Number of distinct images now in the store's registry. */
  images: number;
  /** Every registry file that was read, registry by registry. */
  files: string[];
  /** Each configured registry, in order. */
  registries: RegistrySync[];
  /**
   * The ids of the keys that signed the files read (as minisign prints them: up to 16 hex
   * digits); empty when they were not verified.
   */
  verifiedBy: string[];
}

/** One registry as read now: what it gave, or why it gave nothing usable. */
type Read =
  | { source: RegistrySource; loaded: LoadedRegistry; via: "registry" | "fallback"; from: string }
  | { source: RegistrySource; failure: AxError };

/**
 * Fetches every configured registry with its includes, merges them in order (the first wins on
 * the same name and version; a conflicting duplicate is a warning) and replaces the store's
 * `images.toml` atomically, with a provenance record per entry. A registry that cannot be read is
 * read from its fallback (not a local file: its error, such as a syntax error at file:line, is
 * the user's to fix and fails the sync as it is); one that still fails (or looks broken: no
 * images, or more than half of the names of its last good copy gone, unless `allowEmpty` /
 * `allowShrink`) keeps its last good copy while the others update. When no registry could be
 * read, nothing changes and the error names each failure.
 */
export async function sync(config: Config, options: SyncOptions = {}): Promise<SyncResult> {
  requireNetwork(config, `syncing the registry ${registryList(config.registry).join(", ")}`);
  const logger = options.logger ?? silentLogger;
  const store = config.localStorage;
  const sources = registrySources(config);
  const { loadRegistry } = await import("../registry/load.js");
  const { checksSignatures } = await import("../registry/signature.js");
  const { pinnedKeys, trustFingerprint } = await import("../config/trust.js");
  const { readAcceptedSignatures } = await import("../store/signatures.js");
  // A built-in registry's files are pinned by its name (`tgos`) as well as by their URLs.
  const names = new Map(
    sources.flatMap((s) => [s.url, s.fallback ?? s.url].map((url) => [url, s.name] as const)),
  );
  // A path is pinned as the file it names (`-R ./regs/main.toml` by `[[trust]]`'s absolute path).
  const canonical = (url: string) => {
    try {
      return toLocation(url);
    } catch {
      return url; // refused when it is loaded
    }
  };
  // A built-in registry's file given by its URL is pinned by the built-in's name too.
  const base = config.registryBaseUrl ?? DEFAULT_REGISTRY_BASE_URL;
  const builtin = (url: string) =>
    builtinNameOf(url, base) ?? builtinNameOf(canonical(url), toLocation(base)) ?? url;
  const policy = (url: string, accepted: AcceptedSignatures): SignaturePolicy => ({
    keys: pinnedKeys(config.trust ?? [], url, canonical(url), names.get(url) ?? url, builtin(url)),
    required: config.requireSignatures ?? false,
    accepted,
  });
  // A registry whose signatures are not checked is asked for before the store's sync lock is
  // taken (answers take longer than the lock): the lock guards the store's registry, and the
  // registry cache below it is per URL with atomic replacements, so two syncs may fill it at once.
  // Giving up on the lock cancels the requests. A checked one is read under the lock, against the
  // rollback state as it is then.
  // Each registry's load (and its fallback's) listens to it: any number of registries may.
  const early = linkedController(options.signal);
  const signal = early.controller.signal;
  const loader =
    (accepted: AcceptedSignatures): Load =>
    (url) =>
      loadRegistry(url, {
        cacheDir: bookkeeping(store).registryCache,
        signal,
        logger,
        signatures: policy(url, accepted),
      });
  const unchecked = loader(new Map());
  const asked = sources.map((source) => {
    logger.info(`syncing registry ${describe(source)}`);
    if (checksSignatures(policy(source.url, new Map()))) return undefined;
    const loading = unchecked(source.url);
    loading.catch(() => {}); // awaited under the lock
    return loading;
  });
  return withLock(
    store,
    SYNC_LOCK,
    async () => {
      const previous = await readProvenance(store);
      const accepted = await readAcceptedSignatures(store);
      const load = loader(accepted);
      const reads = await Promise.all(
        sources.map((source, i) =>
          readRegistry(
            store,
            source,
            { first: asked[i] ?? load(source.url), load },
            { alone: sources.length === 1, previous },
            options,
          ),
        ),
      );
      const fresh = reads.filter((r) => "loaded" in r);
      if (fresh.length === 0) throw await syncFailure(store, reads);
      const used = await Promise.all(reads.map((read) => stoodIn(store, read, logger)));
      const groups = used.flatMap((u) => u.groups);
      const merged = mergeImages(groups.map(labelled(sources.length > 1)));
      merged.warnings.forEach((w) => logger.warn(w));
      // The rollback state first: a crash in between leaves it newer than the registry, never older.
      const verifiedBy = await recordSignatures(
        store,
        accepted,
        fresh,
        merged.images.map((image, i) => ({ image, group: groups[merged.origins[i]!]! })),
      );
      const identity = await writeRegistry(store, merged.images);
      const records: ProvenanceGroup[] = groups.map(({ registry, file, via }) => ({
        registry,
        file,
        via,
        images: [],
      }));
      merged.images.forEach((image, i) => {
        records[merged.origins[i]!]!.images.push(formatSpec(image));
      });
      await writeProvenance(store, identity, records);
      const syncedAt = Math.floor(Date.now() / 1000);
      for (const r of fresh) if (r.via === "registry") await keepCopy(store, r, syncedAt);
      await markSource(store, syncSource(sources), incompleteness(used.map((u) => u.result)));
      await markTrust(
        store,
        trustFingerprint(config.trust ?? [], config.requireSignatures ?? false),
      );
      logger.info(
        `registry synced: ${count(merged.images.length, "image")} from ${count(groups.length, "file")}` +
          (sources.length > 1 ? ` of ${sources.length} registries` : ""),
      );
      if (verifiedBy.length > 0) {
        logger.info(`registry verified: every file signed by key ${verifiedBy.join(", ")}`);
      }
      const results = used.map((u) => u.result);
      return {
        source: results[0]!.source,
        usedFallback: results.some((r) => r.via === "fallback"),
        images: merged.images.length,
        files: fresh.flatMap((r) => r.loaded.files),
        registries: results,
        verifiedBy,
      };
    },
    { signal: options.signal, onWait: () => logger.info("waiting for another sync to finish") },
  )
    .catch((err: unknown) => {
      early.controller.abort(err);
      throw err;
    })
    .finally(() => early.dispose());
}

/** Loads one registry file with its includes. */
type Load = (url: string) => Promise<LoadedRegistry>;

/** A registry's root, asked for already, and how to load its fallback. */
interface Loading {
  /** The load of the registry's own root, started before the lock. */
  first: Promise<LoadedRegistry>;
  /** Loads another file (the fallback). */
  load: Load;
}

/** The registry `source` read now: its files, else its fallback; refused when it looks broken. */
async function readRegistry(
  store: string,
  source: RegistrySource,
  { first, load }: Loading,
  before: Before,
  options: SyncOptions,
): Promise<Read> {
  const logger = options.logger ?? silentLogger;
  const { SignatureError } = await import("../registry/signature.js");
  const usable = async (err: unknown): Promise<AxError | undefined> => {
    if (!(err instanceof AxError) || options.signal?.aborted) return undefined;
    // A refused signature is a sign of tampering, not of an outage: no fallback, no sync.
    if (err instanceof SignatureError) throw await keptStore(store, err);
    return err;
  };
  let read: Read;
  try {
    read = { source, loaded: await first, via: "registry", from: source.url };
  } catch (thrown) {
    const err = await usable(thrown);
    if (err === undefined) throw thrown;
    // A local file's error (syntax, missing file) is the user's to fix, where it says.
    if (!isRemote(toLocation(source.url))) throw err;
    if (source.fallback === undefined) return { source, failure: failed(err.message) };
    logger.warn(`${err.message}; trying the fallback registry ${source.fallback}`);
    try {
      read = {
        source,
        loaded: await load(source.fallback),
        via: "fallback",
        from: source.fallback,
      };
    } catch (thrown) {
      const fallbackErr = await usable(thrown);
      if (fallbackErr === undefined) throw thrown;
      return { source, failure: failed(`${err.message}; fallback: ${fallbackErr.message}`) };
    }
  }
  const refusal = await suspicion(store, read, before, options);
  return refusal === undefined ? read : { source, failure: refusal };
}

function failed(problem: string): AxError {
  return new AxError(`sync failed: ${problem}`);
}

/** `tgos (https://...)` for a built-in name, the URL or path itself otherwise. */
function describe(source: RegistrySource): string {
  return source.name === source.url ? source.url : `${source.name} (${source.url})`;
}

/** What the store's registry was before this sync. */
interface Before {
  /** True when one registry is configured. */
  alone: boolean;
  /** The provenance of the store's registry, when it has one. */
  previous: ProvenanceIndex | undefined;
}

/**
 * Why `read` is no registry to replace the store's copy of it with, or undefined: empty (unless
 * `allowEmpty`), or, read from its own files, without more than half of the image names its last
 * good copy lists (unless `allowShrink`). A registry read from its fallback, or one the store's
 * registry does not come from (another `-R`, or its fallback last time), is a choice, not an
 * accident: only emptiness is refused then.
 */
async function suspicion(
  store: string,
  read: Extract<Read, { loaded: LoadedRegistry }>,
  before: Before,
  options: SyncOptions,
): Promise<AxError | undefined> {
  const { images } = read.loaded;
  if (images.length === 0) {
    if (options.allowEmpty) return undefined;
    return new AxError(`sync refused: the registry ${read.from} lists no images`, {
      hint: "if the registry is really empty, run `axvisor-image sync --allow-empty`",
    });
  }
  if (options.allowShrink || options.allowEmpty || read.via === "fallback") return undefined;
  const had = await previousNames(store, read.source, before);
  if (had === undefined) return undefined;
  const now = new Set(images.map((e) => e.name));
  const dropped = [...had].filter((n) => !now.has(n)).sort();
  if (dropped.length * 2 <= had.size) return undefined;
  const shown = dropped.length > 5 ? `${dropped.slice(0, 5).join(", ")}, ...` : dropped.join(", ");
  return new AxError(
    `sync refused: the registry ${read.from} drops ${dropped.length} of the ${had.size} images the store's registry lists (${shown})`,
    { hint: "if the registry really dropped them, run `axvisor-image sync --allow-shrink`" },
  );
}

/** `err`, a refused signature, as the one error of the sync: the store's registry is kept. */
async function keptStore(store: string, err: AxError): Promise<AxError> {
  const kept = (await readRegistryState(store).catch(() => undefined))?.kind === "ok";
  const outcome = kept ? "the registry already in the store was kept" : "nothing was written";
  return new AxError(`sync refused: ${err.message}`, {
    hint: err.hint === undefined ? outcome : `${err.hint}; ${outcome}`,
    cause: err,
  });
}

/**
 * Records the verified signatures of the registries just read in the store's rollback state, with
 * the key that verified each image of the merged registry (`winners`: each entry and the group it
 * came from; an entry from a file not verified in this sync, such as one an unsigned registry
 * listed before a signed one, has none); returns the keys that signed, each once.
 */
async function recordSignatures(
  store: string,
  accepted: AcceptedSignatures,
  fresh: readonly Extract<Read, { loaded: LoadedRegistry }>[],
  winners: readonly { image: ImageEntry; group: Group }[],
): Promise<string[]> {
  const { acceptSignatures, acceptedSignatureKey } = await import("../registry/signature.js");
  const { writeAcceptedSignatures } = await import("../store/signatures.js");
  // By registry and file: the same file read for two registries may be verified for one only.
  const fileKey = (registry: string, file: string) => `${registry}\0${file}`;
  const keyOf = new Map<string, string>();
  for (const { source, loaded } of fresh) {
    for (const verdict of loaded.verdicts) {
      if (verdict.status === "verified")
        keyOf.set(fileKey(source.name, verdict.file), verdict.keyId);
    }
  }
  if (keyOf.size === 0 && accepted.size === 0) return []; // a store that never verified one
  const images = winners.flatMap(({ image, group }) => {
    const keyId =
      group.via === "last-good" ? undefined : keyOf.get(fileKey(group.registry, group.file));
    if (keyId === undefined) return [];
    return [
      { name: image.name, version: image.version, keyId, file: acceptedSignatureKey(group.file) },
    ];
  });
  const verdicts = fresh.flatMap((r) => r.loaded.verdicts);
  await writeAcceptedSignatures(store, acceptSignatures(accepted, verdicts), images);
  return [...new Set(keyOf.values())];
}

/**
 * The image names `source` listed at its last good sync, when the store's registry comes from it:
 * its last good copy; for a registry configured alone, in a store synced before copies were kept,
 * the store's registry when it was synced from the same URL. Undefined otherwise (nothing to
 * compare with).
 */
async function previousNames(
  store: string,
  source: RegistrySource,
  { alone, previous }: Before,
): Promise<Set<string> | undefined> {
  if (previous !== undefined) {
    const via = previous.via(source.name);
    if (via !== "registry" && via !== "last-good") return undefined;
    const copy = await readRegistryCopy(store, source.name);
    return copy && new Set(copy.files.flatMap((f) => f.images.map((e) => e.name)));
  }
  if (!alone) return undefined;
  const state = await readRegistryState(store).catch(() => undefined);
  const recorded = await readSyncSource(store);
  if (state?.kind !== "ok" || (recorded !== undefined && recorded !== source.url)) {
    return undefined;
  }
  return new Set(state.images.map((e) => e.name));
}

/** The error of a sync where no registry could be used; the store's registry is left as it is. */
async function syncFailure(store: string, reads: Read[]): Promise<AxError> {
  const failures = reads.map((r) => ("failure" in r ? r.failure : undefined));
  const kept =
    (await readRegistryState(store).catch(() => undefined))?.kind === "ok"
      ? "the registry already in the store was kept"
      : "nothing was written to the store";
  if (failures.length === 1) {
    const failure = failures[0]!;
    const advice =
      failure.hint ?? "check the registry URL (-R, or `registry` in .image.toml) and the network";
    return new AxError(failure.message, { hint: `${kept}; ${advice}` });
  }
  const each = reads.map((r, i) => `${r.source.name}: ${failures[i]!.message}`);
  return new AxError(`sync failed: no registry could be read: ${each.join("; ")}`, {
    hint: `${kept}; check the registries (-R, or \`registries\` in .image.toml) and the network`,
  });
}

/** The entries one file of a registry gives the merge, and where they come from. */
interface Group extends Provenance {
  entries: ImageEntry[];
}

/** A registry's part of the merge: its files' entries, and what the sync says of it. */
interface Used {
  groups: Group[];
  result: RegistrySync;
}

/**
 * What `read` contributes: its entries as read now; when it failed, those of its last good copy
 * (with a warning), else nothing (with a warning: its images are left out).
 */
async function stoodIn(store: string, read: Read, logger: Logger): Promise<Used> {
  const { name: registry, url } = read.source;
  if ("loaded" in read) {
    const { via, from } = read;
    const files = byFile(read.loaded);
    return {
      groups: files.map((f) => ({ registry, file: f.file, via, entries: f.images })),
      result: { registry, url, via, source: from, images: read.loaded.images.length },
    };
  }
  const problem = read.failure.message;
  const copy = await readRegistryCopy(store, registry);
  if (copy === undefined) {
    logger.warn(
      `registry ${registry}: ${problem}; it has no copy from an earlier sync: its images are left out`,
    );
    return {
      groups: [],
      result: { registry, url, via: "missing", source: url, images: 0, problem },
    };
  }
  const when = new Date(copy.syncedAt * 1000).toISOString();
  logger.warn(`registry ${registry}: ${problem}; keeping its copy from the sync of ${when}`);
  const images = copy.files.reduce((sum, f) => sum + f.images.length, 0);
  return {
    groups: copy.files.map((f) => ({
      registry,
      file: f.file,
      via: "last-good",
      entries: f.images,
    })),
    result: { registry, url, via: "last-good", source: copy.url, images, problem },
  };
}

/** The entries of `loaded`, by the file that listed them, in the order the files were read. */
function byFile(loaded: LoadedRegistry): { file: string; images: ImageEntry[] }[] {
  const files = new Map(loaded.files.map((file) => [file, [] as ImageEntry[]]));
  loaded.images.forEach((image, i) => files.get(loaded.origins[i]!)!.push(image));
  return [...files].map(([file, images]) => ({ file, images }));
}

/** A group as a source of the merge; with several registries, its name says which. */
function labelled(several: boolean) {
  return (group: Group): ImageSource => ({
    source: several ? `${group.file} (registry ${group.registry})` : group.file,
    images: group.entries,
  });
}

/** Keeps what `read` gave as its registry's last good copy. */
function keepCopy(
  store: string,
  read: Extract<Read, { loaded: LoadedRegistry }>,
  syncedAt: number,
): Promise<void> {
  const copy: RegistryCopy = {
    registry: read.source.name,
    url: read.source.url,
    syncedAt,
    files: byFile(read.loaded),
  };
  return writeRegistryCopy(store, copy);
}

/** What the store's registry was synced from: the URL of a lone registry, else the list. */
function syncSource(sources: readonly RegistrySource[]): string {
  return sources.length === 1 ? sources[0]!.url : sources.map((s) => s.name).join("\n");
}

/** Why the store's registry lists less than its registries do, or undefined when it does not. */
function incompleteness(results: readonly RegistrySync[]): string | undefined {
  const reasons = results.flatMap((r) =>
    r.via === "fallback"
      ? [`registry ${r.registry} was read from its fallback registry ${r.source}`]
      : r.via === "missing"
        ? [`registry ${r.registry} could not be read`]
        : [],
  );
  return reasons.length > 0 ? reasons.join("; ") : undefined;
}
