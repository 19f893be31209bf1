/**
 * Loading a registry with its includes: breadth-first from the root, each file once, the files of
 * one level fetched concurrently while the merge order stays that of a sequential breadth-first
 * walk (level by level, each level in the order its files were named).
 */

import { linkedController } from "../concurrency.js";
import { silentLogger, type Logger } from "../log.js";
import { RegistryError } from "./errors.js";
import { parseRegistry } from "./format.js";
import { isRemote, resolveInclude, toLocation } from "./location.js";
import { quote, urlScheme } from "./rules.js";
import { mergeImages, type ImageSource } from "./merge.js";
import {
  MAX_REGISTRY_FILE_BYTES,
  readRegistrySource,
  type RegistryHttpOptions,
  type SourceResult,
} from "./source.js";
import type { ImageEntry, RegistryFile } from "./types.js";

/** Limits of one load; past one, the load fails with an error naming the file at fault. */
export interface RegistryLimits {
  /** Levels of includes below the root; default 32. */
  maxDepth?: number;
  /** Registry files in one load, root included; default 1000. */
  maxFiles?: number;
  /** Size of one registry file in bytes; default 16 MiB. */
  maxFileBytes?: number;
  /** Files fetched at once; default 8. */
  concurrency?: number;
}

/** Options of {@link loadRegistry}. */
export interface LoadRegistryOptions {
  /** Directory for the conditional-request cache (also the source of stale copies of includes). */
  cacheDir?: string;
  /** Cancels the load (AbortedError); reads under way are stopped. */
  signal?: AbortSignal;
  /** Warnings go to `logger.warn` as they arise (and are returned too); retries to `info`. */
  logger?: Logger;
  /** Overrides of {@link DEFAULT_LIMITS}. */
  limits?: RegistryLimits;
  /** Retry and timeout tuning of HTTP requests. */
  http?: RegistryHttpOptions;
}

/** A loaded registry. */
export interface LoadedRegistry {
  /** Merged images: deduplicated by (name, version), first seen wins, in breadth-first order. */
  images: ImageEntry[];
  /** Every registry file read (canonical URL or absolute path), in breadth-first order. */
  files: string[];
  /** For each of `images`, the registry file that listed it first (one of `files`). */
  origins: string[];
  /** Every warning, in order: unknown keys, stale includes, conflicting duplicates. */
  warnings: string[];
}

/** Default limits (see {@link RegistryLimits}). */
export const DEFAULT_LIMITS: Required<RegistryLimits> = {
  maxDepth: 32,
  maxFiles: 1000,
  maxFileBytes: MAX_REGISTRY_FILE_BYTES,
  concurrency: 8,
};

/** One file to read: where, how deep, and which file included it. */
interface Pending {
  location: string;
  depth: number;
  parent: string | undefined;
}

/**
 * Loads the registry at `rootUrl` (http(s) URL, `file://` URL or path) with all its includes.
 * An include that cannot be read while the cache holds a copy from an earlier load keeps that
 * copy, with a warning naming it; the root failing, or an include without a cached copy, fails
 * the load.
 *
 * @throws RegistryError / TransferError naming the file at fault; AbortedError on abort.
 */
export async function loadRegistry(
  rootUrl: string,
  options: LoadRegistryOptions = {},
): Promise<LoadedRegistry> {
  const limits = { ...DEFAULT_LIMITS, ...options.limits };
  const logger = options.logger ?? silentLogger;
  const warnings: string[] = [];
  const warn = (message: string) => {
    warnings.push(message);
    logger.warn(message);
  };
  const root = toLocation(rootUrl);
  const seen = new Set([root]);
  const sources: ImageSource[] = [];
  let level: Pending[] = [{ location: root, depth: 0, parent: undefined }];
  while (level.length > 0) {
    const next: Pending[] = [];
    for await (const { file, result, fileWarnings } of readLevel(level, limits, options)) {
      fileWarnings.forEach(warn);
      if (result.origin === "stale") {
        warn(
          `${result.staleBecause?.message}; using the copy of ${file.location} from an earlier sync`,
        );
      }
      if (isRemote(file.location)) refuseLocalImages(file.location, result.value.images);
      sources.push({ source: file.location, images: result.value.images });
      for (const include of result.value.includes) {
        const location = resolveInclude(file.location, include.url);
        if (seen.has(location)) continue;
        seen.add(location);
        checkLimits(location, file, seen.size, limits);
        next.push({ location, depth: file.depth + 1, parent: file.location });
      }
    }
    level = next;
  }
  const merged = mergeImages(sources);
  merged.warnings.forEach(warn);
  const files = sources.map((s) => s.source);
  const origins = merged.origins.map((i) => files[i]!);
  return { images: merged.images, files, origins, warnings };
}

/** A registry from the network may not make us read local files (`file:///dev/zero`...). */
function refuseLocalImages(location: string, images: readonly ImageEntry[]): void {
  const local = images.find((image) => urlScheme(image.url) === "file:");
  if (local) {
    throw new RegistryError(
      `${location}: image ${quote(local.name)}: url ${quote(local.url)} refused: a remote registry cannot point at local files`,
    );
  }
}

function checkLimits(
  location: string,
  parent: Pending,
  files: number,
  limits: Required<RegistryLimits>,
): void {
  if (parent.depth + 1 > limits.maxDepth) {
    throw new RegistryError(
      `${parent.location}: include ${location} is ${parent.depth + 1} levels below the root ` +
        `registry (the limit is ${limits.maxDepth}; is there a chain of includes?)`,
    );
  }
  if (files > limits.maxFiles) {
    throw new RegistryError(
      `${parent.location}: include ${location} would be registry file number ${files} ` +
        `(the limit is ${limits.maxFiles} files per load)`,
    );
  }
}

/** A file of a level as read, with the warnings its parsing gave. */
interface ReadFile {
  file: Pending;
  result: SourceResult<RegistryFile>;
  fileWarnings: string[];
}

/**
 * Reads the files of one level, at most `limits.concurrency` at once (started in the level's
 * order), and yields them in the level's order. The first failure in that order is thrown and the
 * reads still running are stopped, so that the outcome does not depend on timing.
 */
async function* readLevel(
  level: Pending[],
  limits: Required<RegistryLimits>,
  options: LoadRegistryOptions,
): AsyncGenerator<ReadFile> {
  const stop = linkedController(options.signal);
  const signal = stop.controller.signal;
  const limit = concurrencyLimiter(Math.max(1, limits.concurrency));
  const reads = level.map((file) => {
    const fileWarnings: string[] = [];
    const accept = (text: string) =>
      parseRegistry(text, file.location, { onWarning: (w) => fileWarnings.push(w) });
    const reading = limit(() =>
      readRegistrySource(file.location, accept, {
        cacheDir: options.cacheDir,
        signal,
        logger: options.logger,
        maxBytes: limits.maxFileBytes,
        http: options.http,
        staleOnError: file.parent !== undefined,
      }),
    ).then((result) => ({ file, result, fileWarnings }));
    reading.catch(() => {}); // awaited below, in order; this keeps it from counting as unhandled
    return reading;
  });
  try {
    for (const reading of reads) yield await reading;
  } finally {
    stop.dispose();
    stop.controller.abort();
  }
}

/** Runs the tasks given to it with at most `max` running at once, starting them in call order. */
function concurrencyLimiter(max: number): <T>(task: () => Promise<T>) => Promise<T> {
  let active = 0;
  const waiting: (() => void)[] = [];
  return async (task) => {
    while (active >= max) await new Promise<void>((wake) => waiting.push(wake));
    active++;
    try {
      return await task();
    } finally {
      active--;
      waiting.shift()?.();
    }
  };
}
