/**
 * `sync`: fetch the configured registry (or the fallback) with its includes and replace the
 * store's `images.toml`, refusing an answer that looks broken.
 */
import type { Config } from "../config/config.js";
import { AxError } from "../errors.js";
import { silentLogger } from "../log.js";
import { isRemote, toLocation } from "../registry/location.js";
import type { ImageEntry } from "../registry/types.js";
import { SYNC_LOCK, bookkeeping } from "../store/layout.js";
import { withLock } from "../store/lock.js";
import { markSource, readRegistryState, readSyncSource, writeRegistry } from "../store/state.js";
import type { OperationOptions } from "./options.js";

/** Options of {@link sync}. */
export interface SyncOptions extends OperationOptions {
  /** Accept a registry that lists no images (refused by default: it would orphan every image). */
  allowEmpty?: boolean;
  /**
   * Accept a registry, read from the same URL as the store's, that drops more than half of the
   * image names the store's registry lists (refused by default; implied by `allowEmpty`).
   */
  allowShrink?: boolean;
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
 * atomically. When a remote registry cannot be read, the fallback registry is used (a local file's
 * error is thrown as it is: the fallback is not for a file the user is editing); when both fail,
 * the store's registry is left as it was and the error names both. A registry that lists no
 * images, or (read from the URL the store's registry came from) drops more than half of its
 * image names, is refused unless `allowEmpty` / `allowShrink` say otherwise: it is far more likely
 * a broken answer than a real registry, and `prune` would judge the store by it.
 */
export async function sync(config: Config, options: SyncOptions = {}): Promise<SyncResult> {
  const logger = options.logger ?? silentLogger;
  const store = config.localStorage;
  const { loadRegistry } = await import("../registry/load.js");
  return withLock(
    store,
    SYNC_LOCK,
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
        // A local file's error (syntax, missing file) is the user's to fix, where it says.
        if (!isRemote(toLocation(config.registry))) throw err;
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
      await refuseSuspicious(store, source, usedFallback, loaded.images, options);
      await writeRegistry(store, loaded.images);
      await markSource(store, source, usedFallback);
      logger.info(
        `registry synced: ${loaded.images.length} images from ${loaded.files.length} file(s)`,
      );
      return { source, usedFallback, images: loaded.images.length, files: loaded.files };
    },
    { signal: options.signal, onWait: () => logger.info("waiting for another sync to finish") },
  );
}

/**
 * Throws when `images`, read from `source`, is no registry to replace the store's with: empty
 * (unless `allowEmpty`), or, read from the URL the store's registry came from (or from an unknown
 * one), without more than half of the image names the store's registry lists (unless
 * `allowShrink`). A registry from another URL (`-R`) or from the fallback is a choice, not an
 * accident: only emptiness is refused then.
 */
async function refuseSuspicious(
  store: string,
  source: string,
  usedFallback: boolean,
  images: readonly ImageEntry[],
  options: SyncOptions,
): Promise<void> {
  const previous = await readRegistryState(store).catch(() => undefined);
  const kept =
    previous?.kind === "ok" ? "the store's registry was kept" : "nothing was written to the store";
  if (images.length === 0) {
    if (options.allowEmpty) return;
    throw new AxError(`sync refused: the registry ${source} lists no images`, {
      hint: `${kept}; if the registry is really empty, run \`axvisor-image sync --allow-empty\``,
    });
  }
  if (options.allowShrink || options.allowEmpty || usedFallback) return;
  const recorded = await readSyncSource(store);
  if (previous?.kind !== "ok" || (recorded !== undefined && recorded !== source)) return;
  const dropped = droppedNames(previous.images, images);
  const had = new Set(previous.images.map((e) => e.name)).size;
  if (dropped.length * 2 <= had) return;
  const shown = dropped.length > 5 ? `${dropped.slice(0, 5).join(", ")}, ...` : dropped.join(", ");
  throw new AxError(
    `sync refused: the registry ${source} drops ${dropped.length} of the ${had} images the store's registry lists (${shown})`,
    {
      hint: `${kept}; if the registry really dropped them, run \`axvisor-image sync --allow-shrink\``,
    },
  );
}

/** The image names of `previous` that `images` no longer lists, sorted. */
function droppedNames(previous: readonly ImageEntry[], images: readonly ImageEntry[]): string[] {
  const now = new Set(images.map((e) => e.name));
  return [...new Set(previous.map((e) => e.name))].filter((n) => !now.has(n)).sort();
}
