import { readdir } from "node:fs/promises";
import type { Config } from "../config/config.js";
import { silentLogger } from "../log.js";
import { formatSpec, parseSpec } from "../registry/resolve.js";
import type { ImageSpec } from "../registry/types.js";
import { removeStored } from "../store/copies.js";
import { StoreNames, storeDirs } from "../store/layout.js";
import { withLock } from "../store/lock.js";
import { readRegistryState } from "../store/state.js";
import type { OperationOptions } from "./options.js";

/** What `rm` removed for one argument. */
export interface RemoveResult {
  /** The argument, as given. */
  image: string;
  /** Absolute paths removed (archives, `.part` files, trees). */
  removed: string[];
  /** Folders at the image's tree path left alone: no marker shows this tool made them. */
  kept: string[];
}

/**
 * The store names an argument stands for: `name:version` one, `name` the name and its versions.
 * A version whose store name is refused (it would be another image's too) is left alone, with a
 * warning; an argument whose own store name is refused is an error.
 */
function baseNamesFor(
  names: StoreNames,
  spec: ImageSpec,
  versions: string[],
  options: OperationOptions,
): string[] {
  const bases = [names.baseName(spec)];
  if (spec.version !== undefined) return bases;
  for (const version of versions) {
    const problem = names.problem({ name: spec.name, version });
    if (problem === undefined) bases.push(names.baseName({ name: spec.name, version }));
    else (options.logger ?? silentLogger).warn(`${problem}: not removed`);
  }
  return bases;
}

/**
 * Removes images from the store: `name:version` removes that version's archive and tree, `name`
 * removes the one pulled as `name` and every version of it the registry knows. Paths come from
 * the store's one mapping of names ({@link StoreNames}): an argument it refuses (`images.toml`,
 * or a name another image's files have) removes nothing. Trees disappear at once (renamed away,
 * then deleted); a folder without a marker is the user's and is kept. Each image is removed under
 * its lock.
 *
 * @throws AxError naming an argument whose store name is refused, before anything is removed.
 */
export async function removeImages(
  config: Config,
  specs: (string | ImageSpec)[],
  options: OperationOptions = {},
): Promise<RemoveResult[]> {
  const dirs = storeDirs(config.localStorage, config.extractDir);
  const { store } = dirs;
  const state = await readRegistryState(store);
  const images = state.kind === "ok" ? state.images : [];
  const names = new StoreNames(images);
  const parsed = specs.map((raw) => (typeof raw === "string" ? parseSpec(raw) : raw));
  const plans = parsed.map((spec) => {
    const versions = images.filter((i) => i.name === spec.name).map((i) => i.version);
    return baseNamesFor(names, spec, versions, options);
  });
  const list = (dir: string) => readdir(dir).catch(() => [] as string[]);
  const present = { store: await list(store), trees: await list(dirs.trees) };
  const results: RemoveResult[] = [];
  for (const [i, spec] of parsed.entries()) {
    const removed: string[] = [];
    const kept: string[] = [];
    for (const base of plans[i]!) {
      const done = await withLock(store, base, () => removeStored(dirs, base, present), {
        signal: options.signal,
      });
      removed.push(...done.removed);
      kept.push(...done.kept);
    }
    const raw = specs[i]!;
    results.push({ image: typeof raw === "string" ? raw : formatSpec(spec), removed, kept });
  }
  return results;
}
