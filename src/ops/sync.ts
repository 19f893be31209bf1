import type { Config } from "../config/config.js";
import { AxError } from "../errors.js";
import { silentLogger, type Logger } from "../log.js";
import type { ImageEntry } from "../registry/types.js";
import { bookkeeping } from "../store/layout.js";
import { withLock } from "../store/lock.js";
import {
  isStale,
  markFallback,
  readLastSync,
  readRegistryState,
  writeRegistry,
} from "../store/state.js";

/** Options shared by every operation. */
export interface OperationOptions {
  signal?: AbortSignal;
  /** Status lines and warnings; silent by default. */
  logger?: Logger;
}

/** What a sync did. */
export interface SyncResult {
  /** The registry URL that was read: the configured one, or the fallback. */
  source: string;
  /** True when the configured registry failed and the fallback was used. */
  usedFallback: boolean;
  /** Number of distinct images now in the store's registry. */
  images: number;
  /** Every registry file that was read. */
  files: string[];
}

/**
 * Fetches the configured registry with its includes and replaces the store's `images.toml`
 * atomically. When the registry cannot be read, the fallback registry is used; when both fail,
 * the store's registry is left as it was and the error names both.
 */
export async function sync(config: Config, options: OperationOptions = {}): Promise<SyncResult> {
  const logger = options.logger ?? silentLogger;
  const store = config.localStorage;
  const { loadRegistry } = await import("../registry/load.js");
  return withLock(
    store,
    "registry",
    async () => {
      const load = (url: string) =>
        loadRegistry(url, {
          cacheDir: bookkeeping(store).registryCache,
          signal: options.signal,
          logger,
        });
      let source = config.registry;
      let usedFallback = false;
      let loaded;
      logger.info(`syncing registry ${config.registry}`);
      try {
        loaded = await load(config.registry);
      } catch (err) {
        if (!(err instanceof AxError) || options.signal?.aborted) throw err;
        logger.warn(`${err.message}; trying the fallback registry ${config.fallbackRegistry}`);
        source = config.fallbackRegistry;
        usedFallback = true;
        try {
          loaded = await load(config.fallbackRegistry);
        } catch (fallbackErr) {
          if (!(fallbackErr instanceof AxError)) throw fallbackErr;
          const kept = (await readRegistryState(store)).kind === "ok";
          throw new AxError(`sync failed: ${err.message}; fallback: ${fallbackErr.message}`, {
            hint: kept
              ? "the registry already in the store was kept"
              : "check the registry URL (-R, or `registry` in .image.toml) and the network",
          });
        }
      }
      await writeRegistry(store, loaded.images);
      await markFallback(store, usedFallback ? source : undefined);
      logger.info(
        `registry synced: ${loaded.images.length} images from ${loaded.files.length} file(s)`,
      );
      return { source, usedFallback, images: loaded.images.length, files: loaded.files };
    },
    { signal: options.signal, onWait: () => logger.info("waiting for another sync to finish") },
  );
}

/**
 * The store's registry, synced first when the auto-sync rules say so: no readable `images.toml`
 * means a sync (with auto-sync off, an error naming the file); a stale one means a sync whose
 * failure only warns and keeps the registry already there.
 */
export async function openRegistry(
  config: Config,
  options: OperationOptions = {},
): Promise<ImageEntry[]> {
  const logger = options.logger ?? silentLogger;
  const store = config.localStorage;
  const state = await readRegistryState(store);
  if (state.kind !== "ok") {
    if (!config.autoSync) {
      if (state.kind === "missing") {
        throw new AxError(`no image registry in the store: ${state.path} does not exist`, {
          hint: "run `axvisor-image sync`, or drop --no-auto-sync",
        });
      }
      throw new AxError(`the store's registry is corrupt: ${state.error.message}`, {
        hint: "run `axvisor-image sync` to repair it",
      });
    }
    logger.info(
      state.kind === "missing"
        ? "no local registry yet: syncing"
        : `the store's registry is corrupt (${state.error.message}): syncing to repair it`,
    );
    await sync(config, options);
    return loadSynced(store);
  }
  const now = Math.floor(Date.now() / 1000);
  if (config.autoSync && isStale(await readLastSync(store), config.autoSyncThreshold, now)) {
    logger.info("local registry is older than the auto-sync threshold: syncing");
    try {
      await sync(config, options);
      return loadSynced(store);
    } catch (err) {
      if (!(err instanceof AxError) || options.signal?.aborted) throw err;
      logger.warn(`auto-sync failed: ${err.message}; using the registry already in the store`);
    }
  }
  return state.images;
}

async function loadSynced(store: string): Promise<ImageEntry[]> {
  const state = await readRegistryState(store);
  if (state.kind === "ok") return state.images;
  throw state.kind === "corrupt"
    ? state.error
    : new AxError(`${state.path} disappeared right after the sync`);
}
