import { mkdir, rm, stat } from "node:fs/promises";
import { resolve } from "node:path";
import type { ArchiveExtractor } from "../archive/extract.js";
import { mapSettled } from "../concurrency.js";
import type { Config } from "../config/config.js";
import { candidateUrls } from "../config/mirrors.js";
import {
  AbortedError,
  AxError,
  ChecksumError,
  UsageError,
  fsError,
  hasCode,
  isNoSpace,
} from "../errors.js";
import { namedLogger, silentLogger, type Logger } from "../log.js";
import { formatSpec, parseSpec, resolveImage } from "../registry/resolve.js";
import type { ImageEntry, ImageSpec } from "../registry/types.js";
import { storeError } from "../store/access.js";
import { placeImage, type ImagePlace } from "../store/image-place.js";
import { StoreNames, storeDirs } from "../store/layout.js";
import type { HeldLock } from "../store/lock.js";
import type { DownloadSink } from "../transfer/download.js";
import { archiveNaming, openSources, sourceKind, type SourceOptions } from "../transfer/sources.js";
import type { LowSpeedRule } from "../transfer/watchdog.js";
import { missingOffline } from "./offline.js";
import { openRegistry } from "./open-registry.js";
import { DEFAULT_PULL_CONCURRENCY, type OperationOptions } from "./options.js";

/** What a pull (or a `publish`, phase `upload`) is doing, for progress bars. */
export interface PullProgress {
  /** The image as asked for (`name` or `name:version`). */
  image: string;
  /** `wait`: another process holds the image; `verify`: hashing a present archive; `upload`:
   *  `publish` sending the archive (`received`: bytes sent). */
  phase: "wait" | "download" | "upload" | "verify" | "extract" | "done";
  /** Bytes done in this phase. */
  received: number;
  /** Bytes expected in this phase, when known. */
  total?: number;
  /**
   * Download phase: bytes of `received` that an earlier, interrupted pull had downloaded (the
   * download resumed there); the bytes of this pull are `received - resumed`.
   */
  resumed?: number;
}

/** Options of {@link pull} and {@link pullMany}. */
export interface PullOptions extends OperationOptions {
  /** Put the tree and a copy of the archive here; the store keeps the download and its records. */
  outputDir?: string;
  /** Extract the archive (default true); false leaves only the verified archive. */
  extract?: boolean;
  /** Hash a present archive even when its stamp says it is unchanged. */
  verify?: boolean;
  /** Progress of each image. */
  onProgress?: (progress: PullProgress) => void;
  /** Abandon and resume a connection that delivers no byte for this long (ms, default
   *  `DEFAULT_STALL_TIMEOUT_MS`). */
  stallTimeoutMs?: number;
  /** Abandon and resume a connection slower than this (default 1 KiB/s over 30 s); such
   *  failures do not renew the retries, so a server dripping bytes ends the pull. */
  lowSpeed?: LowSpeedRule;
  /** Retries of a failing download before giving up on a URL. */
  retries?: number;
  /** The registry to resolve names in (default: the store's, auto-synced). */
  images?: ImageEntry[];
}

/** The outcome of pulling one image. */
export interface PullResult {
  /** The image as asked for. */
  image: string;
  /** The registry entry that was pulled. */
  entry: ImageEntry;
  /** The extracted tree, or the archive with `extract: false` (absolute). */
  path: string;
  /**
   * The file named like the image at the top of its tree, when there is one: what a single-file
   * archive (a tgosimages rootfs `.img`, an initramfs) extracts to, and what axbuild's pull of such
   * a rootfs returns. Undefined with `extract: false`.
   */
  file?: string;
  /** The archive file (absolute; it may be absent when a matching tree was reused). */
  archive: string;
  /** Whether bytes were downloaded in this call. */
  downloaded: boolean;
  /** Whether an archive was extracted in this call. */
  extracted: boolean;
  /** The URL that served the download (a mirror or the original). */
  servedBy?: string;
}

async function ensureOutputDir(dir: string): Promise<void> {
  try {
    await mkdir(dir, { recursive: true });
  } catch (err) {
    if (hasCode(err, "EEXIST") || hasCode(err, "ENOTDIR")) {
      throw new UsageError(`output directory ${dir} is not a directory`);
    }
    throw fsError(err, "create", dir);
  }
  if (!(await stat(dir)).isDirectory()) {
    throw new UsageError(`output directory ${dir} is not a directory`);
  }
}

/**
 * Pulls one image: download, verify and extract in one streaming pass, under the image's
 * cross-process lock. A tree whose marker matches is reused as it is; a present archive whose
 * digest matches is not downloaded again. The archive and tree get a pulled-as record. With
 * `outputDir`, the store still holds the download and the verified archive (so that no pull
 * downloads it again); the tree and a copy of the archive (a hard link when it can) go to the
 * directory, and nothing else does. Offline (`config.offline`), only those copies serve:
 * anything else fails, touching nothing.
 *
 * @throws AxError naming the image when its store name is refused ({@link StoreNames}).
 */
export async function pull(
  config: Config,
  spec: string | ImageSpec,
  options: PullOptions = {},
): Promise<PullResult> {
  const images = options.images ?? (await openRegistry(config, options));
  const parsed = typeof spec === "string" ? parseSpec(spec) : spec;
  const entry = resolveImage(images, parsed);
  StoreNames.of(images).baseName(parsed);
  const dirs = storeDirs(config.localStorage, config.extractDir);
  // `-o` naming where the pull puts its tree anyway is a pull into the store.
  let outputDir = options.outputDir === undefined ? undefined : resolve(options.outputDir);
  if (outputDir === dirs.store || outputDir === dirs.trees) outputDir = undefined;
  if (outputDir !== undefined) await ensureOutputDir(outputDir);
  await ensureStore(dirs.store);
  if (dirs.trees !== dirs.store) await ensureOutputDir(dirs.trees);
  const image = formatSpec(parsed);
  const logger = namedLogger(options.logger ?? silentLogger, image);
  options = { ...options, logger };
  // Only an oci:// URL leaves the archive's name to its source: OCI is loaded for those alone.
  // Offline, a name the store cannot decide is an image the store does not have.
  const namingFromSource =
    sourceKind(entry.url) === "oci"
      ? () =>
          config.offline
            ? Promise.reject(missingOffline(image))
            : archiveNaming(
                candidateUrls(entry.url, config.mirrors),
                sourceOptions(config, image, entry, options),
              )
      : undefined;
  const place = await placeImage(dirs, parsed, entry.url, {
    sha256: entry.sha256,
    archiveNaming: namingFromSource,
    outputDir,
  });
  const extract = options.extract ?? true;
  // Fast path without the lock: a marker is written last and trees are renamed into place, so a
  // matching marker means a complete tree.
  if (extract && !options.verify && (await place.treeMarker()) === entry.sha256) {
    options.onProgress?.({ image, phase: "done", received: 0 });
    return withFile(place, await upToDate(place, entry, logger));
  }
  const res = await place.withLock(
    (lock) => pullLocked(config, place, entry, lock, options).catch(naming(image)),
    {
      signal: options.signal,
      onWait: () => {
        logger.info("another process is pulling it; waiting");
        options.onProgress?.({ image, phase: "wait", received: 0 });
      },
    },
  );
  options.onProgress?.({ image, phase: "done", received: 0 });
  return withFile(place, res);
}

/** `result` with the tree's file named like the image, when it has one. */
async function withFile(place: ImagePlace, result: PullResult): Promise<PullResult> {
  if (result.path !== place.tree) return result;
  const file = await place.treeFile();
  return file === undefined ? result : { ...result, file };
}

/** Makes the store directory, or fails saying why it cannot be one (see `storeError`). */
async function ensureStore(store: string): Promise<void> {
  try {
    await mkdir(store, { recursive: true });
  } catch (err) {
    throw await storeError(store, err, "create", store);
  }
}

/**
 * The result of a pull whose tree was already there, with its marker matching. Its record is
 * brought up to date too: the same archive may have been pulled as an older version that the
 * registry released it under.
 */
async function upToDate(place: ImagePlace, entry: ImageEntry, logger: Logger): Promise<PullResult> {
  await place.recordPulled("tree", entry);
  logger.info(`up to date at ${place.tree}`);
  return {
    image: place.image,
    entry,
    path: place.tree,
    archive: place.delivered,
    downloaded: false,
    extracted: false,
  };
}

async function pullLocked(
  config: Config,
  place: ImagePlace,
  entry: ImageEntry,
  lock: HeldLock,
  options: PullOptions,
): Promise<PullResult> {
  const { image } = place;
  const logger = options.logger ?? silentLogger;
  const extract = options.extract ?? true;
  const result = (downloaded: boolean, extracted: boolean): PullResult => ({
    image,
    entry,
    path: extract ? place.tree : place.delivered,
    archive: place.delivered,
    downloaded,
    extracted,
  });

  await place.removeStaleStaging();
  // Looked at again under the lock: another process may have finished it while we waited.
  const marker = extract ? await place.treeMarker() : undefined;
  if (marker === entry.sha256 && !options.verify) return upToDate(place, entry, logger);

  const digest = await place.archiveDigest({
    force: options.verify,
    onBytes: progressCounter(image, "verify", options),
  });
  if (digest === entry.sha256) {
    await place.recordPulled("archive", entry);
    let extracted = false;
    if (extract && marker === entry.sha256) await place.recordPulled("tree", entry);
    else if (extract) {
      logger.info(`extracting ${place.archive}`);
      await extractPresentArchive(place, entry, lock, logger, options);
      extracted = true;
    }
    await place.deliverArchive();
    return result(false, extracted);
  }
  if (config.offline) throw missingOffline(image);
  if (digest !== undefined) {
    logger.info(`${place.archive} does not match the registry; downloading it again`);
    await place.discardArchive();
  }
  const servedBy = await downloadAndInstall(config, place, entry, lock, extract, options);
  await place.deliverArchive();
  return { ...result(true, extract), servedBy };
}

/**
 * Makes an error of a pull name its image (`error: NAME: corrupt tar archive ...`), unless it
 * already does or has a wording of its own (a full disk names the file being written).
 */
export function naming(image: string): (err: unknown) => never {
  return (err) => {
    if (
      !(err instanceof AxError) ||
      err.message.startsWith(`${image}: `) ||
      err instanceof ChecksumError ||
      err instanceof AbortedError ||
      err instanceof UsageError ||
      isNoSpace(err) ||
      err.message.startsWith(`${image}: `)
    ) {
      throw err;
    }
    throw new AxError(`${image}: ${err.message}`, { hint: err.hint, cause: err });
  };
}

function progressCounter(
  image: string,
  phase: PullProgress["phase"],
  options: PullOptions,
): ((n: number) => void) | undefined {
  const report = options.onProgress;
  if (!report) return undefined;
  let done = 0;
  return (n) => {
    done += n;
    report({ image, phase, received: done });
  };
}

async function extractPresentArchive(
  place: ImagePlace,
  entry: ImageEntry,
  lock: HeldLock,
  logger: Logger,
  options: PullOptions,
): Promise<void> {
  const { extractFile } = await import("../archive/extract.js");
  const staging = await place.newStaging();
  try {
    await extractFile(place.archive, staging, {
      onWarning: (m: string) => logger.warn(m),
      signal: options.signal,
    });
    lock.assertHeld();
    await place.installTree(staging, entry.sha256);
  } catch (err) {
    await rm(staging, { recursive: true, force: true });
    throw err;
  }
  await place.recordPulled("tree", entry);
}

/** What the sources of `entry`'s download need: its sha256, and how to reach OCI registries. */
function sourceOptions(
  config: Config,
  image: string,
  entry: ImageEntry,
  options: PullOptions,
): SourceOptions {
  const { signal, retries, stallTimeoutMs } = options;
  const logger = namedLogger(options.logger ?? silentLogger, image);
  const integrity = { sha256: entry.sha256, what: `image ${image}` };
  const { insecureRegistries } = config;
  const { arch } = entry;
  return { integrity, arch, insecureRegistries, signal, logger, retries, stallTimeoutMs };
}

/**
 * The one-pass download: every byte is hashed and fed to the extractor as it arrives; the
 * `.part` becomes the archive and the staging tree becomes the tree only after the digest matched.
 * Returns the URL that served the bytes.
 */
async function downloadAndInstall(
  config: Config,
  place: ImagePlace,
  entry: ImageEntry,
  lock: HeldLock,
  extract: boolean,
  options: PullOptions,
): Promise<string> {
  const logger = options.logger ?? silentLogger;
  const [{ download }, extractModule] = await Promise.all([
    import("../transfer/download.js"),
    extract ? import("../archive/extract.js") : undefined,
  ]);
  let extractor: ArchiveExtractor | undefined;
  let staging: string | undefined;
  /** Set when the bytes themselves were refused (bad archive, full disk): no point resuming. */
  let contentFailed = false;

  const discardStaging = async () => {
    await extractor?.abort();
    if (staging) await rm(staging, { recursive: true, force: true });
    extractor = undefined;
    staging = undefined;
  };
  const freshPipeline = async () => {
    await discardStaging();
    if (extractModule) {
      staging = await place.newStaging();
      extractor = new extractModule.ArchiveExtractor(staging, {
        onWarning: (m: string) => logger.warn(m),
        signal: options.signal,
      });
    }
  };
  const sink: DownloadSink = {
    reset: freshPipeline,
    async write(chunk: Buffer) {
      try {
        await extractor?.write(chunk);
      } catch (err) {
        contentFailed = true;
        throw err;
      }
    },
  };

  await freshPipeline();
  try {
    const sourcing = sourceOptions(config, place.image, entry, options);
    const sources = await openSources(candidateUrls(entry.url, config.mirrors), sourcing);
    logger.info(`downloading ${entry.url}`);
    // The download checks the sha256 as the bytes flow: past it, they are the entry's.
    const done = await download({
      sources,
      part: { path: place.part, meta: place.partMeta },
      integrity: sourcing.integrity,
      sink,
      signal: options.signal,
      logger: sourcing.logger,
      stallTimeoutMs: options.stallTimeoutMs,
      lowSpeed: options.lowSpeed,
      retries: options.retries,
      onProgress: (p) => options.onProgress?.({ image: place.image, phase: "download", ...p }),
    });
    try {
      await extractor?.end();
    } catch (err) {
      contentFailed = true;
      throw err;
    }
    lock.assertHeld();
    await place.installArchive(entry.sha256);
    await place.recordPulled("archive", entry);
    if (staging) {
      await place.installTree(staging, entry.sha256);
      staging = undefined;
      extractor = undefined;
      await place.recordPulled("tree", entry);
    }
    return done.url;
  } catch (err) {
    await discardStaging();
    if (options.signal?.aborted) {
      throw new AbortedError(`pull of ${place.image} interrupted`, {
        hint: "run the same command again: the download resumes where it stopped",
      });
    }
    // Refused content, a full disk, or nothing received: a .part kept for resuming is useless.
    if (contentFailed || isNoSpace(err) || (await place.partSize()) === 0) await place.removePart();
    throw err;
  }
}

/**
 * Pulls several images, up to `concurrency` (default 3) at a time, resolving names once. The
 * results are in the order of `specs`; one image failing does not stop the others.
 */
export async function pullMany(
  config: Config,
  specs: (string | ImageSpec)[],
  options: PullOptions & { concurrency?: number } = {},
): Promise<PromiseSettledResult<PullResult>[]> {
  const parsed = specs.map((s) => (typeof s === "string" ? parseSpec(s) : s));
  const images = options.images ?? (await openRegistry(config, options));
  return mapSettled(
    parsed,
    options.concurrency ?? DEFAULT_PULL_CONCURRENCY,
    (spec, signal) => pull(config, spec, { ...options, images, signal }),
    options.signal,
  );
}
