/**
 * The store's registry as every command reads it: auto-synced first when it is missing or stale
 * (see {@link openRegistry}).
 */
import type { Config } from "../config/config.js";
import { AxError } from "../errors.js";
import { silentLogger } from "../log.js";
import type { ImageEntry } from "../registry/types.js";
import { isStale, readLastSync, readRegistryState, readSyncedTrust } from "../store/state.js";
import type { OperationOptions } from "./options.js";

/**
 * The store's registry, synced first when the auto-sync rules say so: no readable `images.toml`
 * means a sync (with auto-sync off or offline, an error naming the file); a stale one means a
 * sync (never offline) whose failure only warns and keeps the registry already there.
 */
export async function openRegistry(
  config: Config,
  options: OperationOptions = {},
): Promise<ImageEntry[]> {
  const logger = options.logger ?? silentLogger;
  const store = config.localStorage;
  const state = await readRegistryState(store);
  if (state.kind !== "ok") {
    if (!config.autoSync || config.offline) {
      if (state.kind === "missing") {
        throw new AxError(`no image registry in the store: ${state.path} does not exist`, {
          hint: config.offline
            ? "offline: `pull --locked` needs no registry; otherwise sync once with the network"
            : "run `axvisor-image sync`, or drop --no-auto-sync",
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
    await (await import("./sync.js")).sync(config, options);
    return loadSynced(store);
  }
  const trust = await trustFingerprintOf(config);
  if (trust !== "" && (await readSyncedTrust(store)) !== trust) {
    // Keys pinned, or signatures required, since the last sync: what the store holds was never
    // checked against them. Sync now; a refusal is not papered over with the old registry. (No
    // settings require nothing: a registry synced under any serves them.)
    if (!config.autoSync || config.offline) {
      throw new AxError(
        "the trust settings ([[trust]], require_signatures) changed since the store's registry was synced",
        {
          hint: config.offline
            ? "sync once with the network: its files are then checked against them"
            : "run `axvisor-image sync`: its files are then checked against them",
        },
      );
    }
    logger.info("the trust settings changed since the last sync: syncing");
    await (await import("./sync.js")).sync(config, options);
    return loadSynced(store);
  }
  const now = Math.floor(Date.now() / 1000);
  if (
    config.autoSync &&
    !config.offline &&
    isStale(await readLastSync(store), config.autoSyncThreshold, now)
  ) {
    logger.info("local registry is older than the auto-sync threshold: syncing");
    try {
      await (await import("./sync.js")).sync(config, options);
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

/** `trustFingerprint` (config/trust.ts) of the configuration, its module loaded only when needed. */
async function trustFingerprintOf(config: Config): Promise<string> {
  const rules = config.trust ?? [];
  const required = config.requireSignatures ?? false;
  if (rules.length === 0 && !required) return "";
  return (await import("../config/trust.js")).trustFingerprint(rules, required);
}
