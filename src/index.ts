/**
 * axvisor-image as a library: the operations of the CLI as typed async functions.
 *
 * ```ts
 * import { openStore } from "axvisor-image";
 * const store = await openStore({ overrides: { localStorage: "/tmp/images" } });
 * const { path } = await store.pull("qemu_aarch64_linux", { onProgress: console.log });
 * ```
 *
 * The public surface is everything exported here above the "Internal" section, documented once
 * in the README's Library section (whose example a test runs). What the "Internal" section exports
 * (`@internal`) serves this repository's own tools and tests, and may change in any release.
 */
import { resolveConfig, type Config, type ResolveConfigOptions } from "./config/config.js";
import { listImages, type ListOptions, type ListRow } from "./ops/ls.js";
import { openRegistry } from "./ops/open-registry.js";
import type { OperationOptions } from "./ops/options.js";
import { pull, pullMany, type PullOptions, type PullResult } from "./ops/pull.js";
import { removeImages, type RemoveResult } from "./ops/rm.js";
import { sync, type SyncOptions, type SyncResult } from "./ops/sync.js";
import type { ImageEntry, ImageSpec } from "./registry/types.js";

// The store and its operations.
export { pull, pullMany } from "./ops/pull.js";
export type { PullOptions, PullProgress, PullResult } from "./ops/pull.js";
export { sync } from "./ops/sync.js";
export type { SyncOptions, SyncResult } from "./ops/sync.js";
export { openRegistry } from "./ops/open-registry.js";
export type { OperationOptions } from "./ops/options.js";
export { listImages } from "./ops/ls.js";
export type { ListOptions, ListRow } from "./ops/ls.js";
export { removeImages } from "./ops/rm.js";
export type { RemoveResult } from "./ops/rm.js";
export { imageInfo, imagePath } from "./ops/info.js";
export type { VersionInfo, InfoOptions, PathResult } from "./ops/info.js";
export { verifyImages } from "./ops/verify.js";
export type { CopyCheck, VerifyResult, VerifyOptions } from "./ops/verify.js";
export { prune } from "./ops/prune.js";
export type { PruneItem, PruneOptions, PruneReason, PruneResult } from "./ops/prune.js";
export { storeUsage } from "./ops/du.js";
export type { StoredImage, StoreUsage } from "./ops/du.js";
export { resizeImage } from "./ops/resize.js";
export type { ResizeOptions, ResizeResult } from "./ops/resize.js";
export { publish, addImage } from "./ops/publish.js";
export type { AddImageOptions, AddImageResult } from "./ops/publish.js";
export type { PublishOptions, PublishResult } from "./ops/publish.js";
export { lockImages, lockedImages, checkAgainstLock } from "./ops/lock.js";
export type { LockChange, LockOptions, LockResult } from "./ops/lock.js";
export { ciKey, renderCiKey } from "./ops/ci-key.js";
export type { CiKey } from "./ops/ci-key.js";
export type { CiKeyFormat } from "./ops/options.js";

// Lock files.
export { lockFilePath, readLockFile, writeLockFile, LOCK_FILE_NAME } from "./registry/lock-file.js";
export type { LockEntry } from "./registry/lock-file.js";

// Registries: the format, loading, resolution, editing and checking.
export { parseRegistry, serializeImages } from "./registry/format.js";
export { loadRegistry } from "./registry/load.js";
export { parseSpec, formatSpec, findImage, resolveImage } from "./registry/resolve.js";
export type { ImageEntry, IncludeEntry, RegistryFile, ImageSpec } from "./registry/types.js";
export { upsertImage } from "./registry/edit.js";
export type { ImageUpdate, UpsertResult } from "./registry/edit.js";
export { checkRegistry } from "./registry/check.js";
export type { CheckOptions, CheckReport } from "./registry/check.js";

// Configuration, OCI references, archives, errors, logging.
export { resolveConfig } from "./config/config.js";
export type { Config, ConfigSource, ResolvedConfig } from "./config/config.js";
export type { ResolveConfigOptions } from "./config/config.js";
export type { Mirror } from "./config/mirrors.js";
export type { TrustRule } from "./config/trust.js";
export { parsePublicKey } from "./minisign.js";
export type { PublicKey } from "./minisign.js";
export { parseOciReference } from "./transfer/oci/reference.js";
export { ArchiveExtractor, extractFile } from "./archive/extract.js";
export { AxError, UsageError, ChecksumError, AbortedError } from "./errors.js";
export type { Logger } from "./log.js";

/** A store bound to its effective configuration. */
export interface Store {
  /** The configuration every call uses. */
  readonly config: Config;
  /** The registry's entries (auto-synced as the CLI does). */
  images(options?: OperationOptions): Promise<ImageEntry[]>;
  /** `ls`: rows by name, or by version with `verbose`. */
  list(options?: ListOptions & OperationOptions): Promise<ListRow[]>;
  /** Pull one image. */
  pull(spec: string | ImageSpec, options?: PullOptions): Promise<PullResult>;
  /** Pull several images, a few at a time. */
  pullMany(
    specs: (string | ImageSpec)[],
    options?: PullOptions & { concurrency?: number },
  ): Promise<PromiseSettledResult<PullResult>[]>;
  /** Remove images from the store. */
  remove(specs: (string | ImageSpec)[], options?: OperationOptions): Promise<RemoveResult[]>;
  /** Sync the registry into the store. */
  sync(options?: SyncOptions): Promise<SyncResult>;
}

/**
 * Opens a store with the configuration the CLI would use (flags given as `overrides`, then the
 * environment, `.image.toml`, defaults).
 */
export async function openStore(options: ResolveConfigOptions = {}): Promise<Store> {
  const { config } = await resolveConfig(options);
  return {
    config,
    images: (o) => openRegistry(config, o),
    list: async (o = {}) => listImages(await openRegistry(config, o), o),
    pull: (spec, o) => pull(config, spec, o),
    pullMany: (specs, o) => pullMany(config, specs, o),
    remove: (specs, o) => removeImages(config, specs, o),
    sync: (o) => sync(config, o),
  };
}

// Internal: exported for this repository's tools and tests; no stability promise.

/** @internal Finds the nearest `.image.toml` (the CLI's `config` command). */
export { findConfigFile } from "./config/config.js";
/** @internal The text `defconfig` writes. */
export { renderDefaultConfig } from "./config/render.js";
/** @internal `upsertImage` on text rather than a file. */
export { upsertImageText } from "./registry/edit.js";
/** @internal Where an image's files are in a store (the store's layout). */
export { imagePaths } from "./store/layout.js";
/** @internal */
export type { ImagePaths } from "./store/layout.js";
