/**
 * `verify`: hash the archives in the store against the registry and check the trees' markers;
 * optionally pull again what failed.
 */
import type { Config } from "../config/config.js";
import { AxError, throwIfAborted } from "../errors.js";
import { silentLogger } from "../log.js";
import { formatSpec, parseSpec } from "../registry/resolve.js";
import type { ImageEntry, ImageSpec } from "../registry/types.js";
import { StoreNames, storeDirs } from "../store/layout.js";
import { withLock } from "../store/lock.js";
import { archiveDigest } from "../store/stamps.js";
import { readMarker } from "../store/copies.js";
import { groupBy } from "../group-by.js";
import { scanStore, type StoredCopy } from "../store/scan.js";
import { pullMany, type PullResult } from "./pull.js";
import { openRegistry } from "./open-registry.js";
import type { OperationOptions } from "./options.js";

/** The verdict on one archive or tree. */
export interface CopyCheck {
  /** The image as pulled: `NAME` or `NAME:VERSION`. */
  image: string;
  /** What was checked. */
  copy: StoredCopy;
  /** Undefined when it is good; otherwise one line saying what is wrong. */
  problem?: string;
}

/** What {@link verifyImages} found (and, with `repair`, did). */
export interface VerifyResult {
  /** Every archive and tree checked, sorted by path. */
  checks: CopyCheck[];
  /** The images (as pulled) with at least one failed check, in order. */
  failed: string[];
  /** With `repair`: the outcome of pulling each failed image again, in the order of `failed`. */
  repairs?: PromiseSettledResult<PullResult>[];
}

/** Options of {@link verifyImages}. */
export interface VerifyOptions extends OperationOptions {
  /** Pull failed images again (their archive re-downloaded, their tree re-extracted). */
  repair?: boolean;
  /** The registry to check against (default: the store's, auto-synced). */
  images?: ImageEntry[];
}

/**
 * Checks the images in the store (all of them, or those `specs` name: `NAME` for every copy of
 * that name, `NAME:VERSION` for that version): each archive is hashed in full and compared with
 * its registry entry, each tree must have a marker matching its entry. For an image pulled as
 * `NAME` any version of that name the registry lists is good. Each image is checked under its
 * lock (on a store that cannot be written, without it: nothing can change it through this mount).
 *
 * @throws AxError naming an argument whose store name is refused ({@link StoreNames}), or the
 *   arguments that match nothing in the store.
 */
export async function verifyImages(
  config: Config,
  specs: (string | ImageSpec)[],
  options: VerifyOptions = {},
): Promise<VerifyResult> {
  const logger = options.logger ?? silentLogger;
  const store = config.localStorage;
  const images = options.images ?? (await openRegistry(config, options));
  const wanted = specs.map((s) => (typeof s === "string" ? parseSpec(s) : s));
  const names = StoreNames.of(images);
  for (const spec of wanted) names.baseName(spec);
  const inventory = await scanStore(storeDirs(store, config.extractDir), images);
  // Copies of images the registry lists (as pulled: that version, or that name).
  const owned = inventory.copies.filter(
    (c) =>
      c.spec !== undefined &&
      images.some((e) => e.name === c.spec!.name && (c.spec!.version ?? e.version) === e.version),
  );
  const selected =
    wanted.length === 0 ? owned : owned.filter((c) => wanted.some((w) => matches(c, w)));
  const missing = wanted.filter((w) => !owned.some((c) => matches(c, w))).map(formatSpec);
  if (missing.length > 0) {
    throw new AxError(`not in the store ${store}: ${missing.join(", ")}`, {
      hint: "run `axvisor-image du` to see what the store holds",
    });
  }
  const checks: CopyCheck[] = [];
  for (const [baseName, copies] of groupBy(selected, (c) => c.baseName)) {
    await withLock(
      store,
      baseName,
      async () => {
        for (const copy of copies) {
          const image = formatSpec(copy.spec!);
          if (copy.kind === "archive") logger.info(`hashing ${copy.path}`);
          checks.push({ image, copy, ...(await checkCopy(copy, images, options.signal)) });
        }
      },
      {
        signal: options.signal,
        onWait: () => logger.info(`${baseName}: waiting for another process`),
        unlessReadOnly: true,
      },
    );
  }
  checks.sort((a, b) => (a.copy.path < b.copy.path ? -1 : 1));
  const failed = [...new Set(checks.filter((c) => c.problem !== undefined).map((c) => c.image))];
  const result: VerifyResult = { checks, failed };
  if (options.repair && failed.length > 0) {
    result.repairs = await repair(config, checks, failed, images, options);
  }
  return result;
}

function matches(copy: StoredCopy, spec: ImageSpec): boolean {
  const name = copy.spec?.name;
  if (name !== spec.name) return false;
  return spec.version === undefined || copy.entry?.version === spec.version;
}

/** Archives: full hash; trees: marker. Good when it matches the entry the copy was pulled as. */
async function checkCopy(
  copy: StoredCopy,
  images: readonly ImageEntry[],
  signal: AbortSignal | undefined,
): Promise<{ problem?: string }> {
  throwIfAborted(signal);
  const spec = copy.spec!;
  const accepted = images.filter(
    (e) => e.name === spec.name && (spec.version === undefined || e.version === spec.version),
  );
  const good = (sha: string) => accepted.some((e) => e.sha256 === sha);
  const expected = accepted.length === 1 ? ` (expected ${accepted[0]!.sha256})` : "";
  if (copy.kind === "archive") {
    const digest = await archiveDigest(copy.path, { force: true });
    if (digest === undefined) return { problem: `${copy.path} disappeared` };
    if (good(digest)) return {};
    return { problem: `archive ${copy.path} has sha256 ${digest}${expected}` };
  }
  const marker = await readMarker(copy.path);
  if (marker === undefined) {
    return { problem: `tree ${copy.path} has no marker (an interrupted or foreign extraction)` };
  }
  if (good(marker)) return {};
  return {
    problem: `tree ${copy.path} was extracted from an archive with sha256 ${marker}${expected}`,
  };
}

/** Pulls each failed image again: archives hashed in full, trees re-extracted where they were. */
async function repair(
  config: Config,
  checks: CopyCheck[],
  failed: string[],
  images: ImageEntry[],
  options: VerifyOptions,
): Promise<PromiseSettledResult<PullResult>[]> {
  const results: PromiseSettledResult<PullResult>[] = [];
  for (const image of failed) {
    const copies = checks.filter((c) => c.image === image).map((c) => c.copy);
    const extract = copies.some((c) => c.kind === "tree");
    const [outcome] = await pullMany(config, [image], {
      images,
      extract,
      verify: true,
      signal: options.signal,
      logger: options.logger,
    });
    results.push(outcome!);
  }
  return results;
}
