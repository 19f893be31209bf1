import { readdir, rm } from "node:fs/promises";
import { join } from "node:path";
import type { Config } from "../config/config.js";
import { parseSpec } from "../registry/resolve.js";
import type { ImageSpec } from "../registry/types.js";
import { ARCHIVE_EXTENSIONS, imageBaseName } from "../store/layout.js";
import { withLock } from "../store/lock.js";
import { removeStamp } from "../store/stamps.js";
import { readRegistryState } from "../store/state.js";
import { removeAtomically } from "../store/tree.js";
import { partMetaPath } from "../transfer/download.js";
import type { OperationOptions } from "./sync.js";

/** What `rm` removed for one argument. */
export interface RemoveResult {
  /** The argument, as given. */
  image: string;
  /** Absolute paths removed (archives, `.part` files, trees). */
  removed: string[];
}

/** The store names an argument stands for: `name:version` one, `name` the name and its versions. */
async function baseNamesFor(store: string, spec: ImageSpec): Promise<string[]> {
  if (spec.version !== undefined) return [imageBaseName(spec)];
  const state = await readRegistryState(store);
  const versions = state.kind === "ok" ? state.images.filter((i) => i.name === spec.name) : [];
  return [
    spec.name,
    ...versions.map((v) => imageBaseName({ name: spec.name, version: v.version })),
  ];
}

/**
 * Removes images from the store: `name:version` removes that version's archive and tree, `name`
 * removes the one pulled as `name` and every version of it the registry knows. Trees disappear at
 * once (renamed away, then deleted). Each image is removed under its lock.
 */
export async function removeImages(
  config: Config,
  specs: (string | ImageSpec)[],
  options: OperationOptions = {},
): Promise<RemoveResult[]> {
  const store = config.localStorage;
  let entries: string[];
  try {
    entries = await readdir(store);
  } catch {
    entries = [];
  }
  const results: RemoveResult[] = [];
  for (const raw of specs) {
    const spec = typeof raw === "string" ? parseSpec(raw) : raw;
    const removed: string[] = [];
    for (const base of await baseNamesFor(store, spec)) {
      const files = entries.filter((f) =>
        ARCHIVE_EXTENSIONS.some((ext) => f === base + ext || f === `${base}${ext}.part`),
      );
      await withLock(
        store,
        base,
        async () => {
          for (const file of files) {
            const path = join(store, file);
            await rm(path, { force: true });
            if (file.endsWith(".part")) await rm(partMetaPath(path), { force: true });
            await removeStamp(path);
            removed.push(path);
          }
          const tree = join(store, base);
          if (entries.includes(base) && (await removeAtomically(store, tree))) removed.push(tree);
        },
        { signal: options.signal },
      );
    }
    results.push({ image: typeof raw === "string" ? raw : spec.name, removed });
  }
  return results;
}
