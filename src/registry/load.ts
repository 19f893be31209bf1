/**
 * Loading a registry with its includes: breadth-first from the root, each file once, fetched
 * concurrently while the merge order stays that of a sequential breadth-first walk (level by level,
 * each level in the order its files were named). A file's includes are requested as soon as that
 * file is read, not once its whole level is: with includes shared between the files of a level
 * (every versioned file including `common.toml`), the next level starts one answer earlier.
 */

import { linkedController, type LinkedController } from "../concurrency.js";
import { AxError } from "../errors.js";
import { silentLogger, type Logger } from "../log.js";
import { RegistryError } from "./errors.js";
import { parseRegistry } from "./format.js";
import { isRemote, resolveInclude, toLocation } from "./location.js";
import { quote, urlScheme } from "./rules.js";
import { mergeImages, type ImageSource } from "./merge.js";
import {
  checksSignatures,
  judgeRegistryFile,
  refusalError,
  signatureLocation,
  type SignaturePolicy,
  type SignatureVerdict,
} from "./signature.js";
import { MAX_SIGNATURE_BYTES } from "../minisign.js";
import { FileProblemError } from "../regular-file.js";
import {
  MAX_REGISTRY_FILE_BYTES,
  readRegistrySource,
  type ReadSourceOptions,
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
  /**
   * Check every file's signature (`FILE.minisig`) under this policy; a file it refuses fails the
   * load with a {@link SignatureError}. None, or no key pinned and none required: not read.
   */
  signatures?: SignaturePolicy;
}

/** A loaded registry. */
export interface LoadedRegistry {
  /** Merged images: deduplicated by (name, version), first seen wins, in breadth-first order. */
  images: ImageEntry[];
  /** Every registry file read (canonical URL or absolute path), in breadth-first order. */
  files: string[];
  /** For each of `images`, the registry file that listed it first (one of `files`). */
  origins: string[];
  /** The signature verdict of each of `files`, index for index (`unverified` when not checked). */
  verdicts: SignatureVerdict[];
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
  const verdicts: SignatureVerdict[] = [];
  const reader = new EagerReader(limits, options);
  try {
    let level: Pending[] = [{ location: root, depth: 0, parent: undefined }];
    while (level.length > 0) {
      const next: Pending[] = [];
      const reads = level.map((file) => reader.read(file));
      for (const [index, reading] of reads.entries()) {
        const file = level[index]!;
        const { result, fileWarnings, verdict } = await reading;
        fileWarnings.forEach(warn);
        verdicts.push(verdict);
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
  } finally {
    await reader.close();
  }
  const merged = mergeImages(sources);
  merged.warnings.forEach(warn);
  const files = sources.map((s) => s.source);
  const origins = merged.origins.map((i) => files[i]!);
  return { images: merged.images, files, origins, verdicts, warnings };
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

/** A file as read, with the warnings its parsing gave and its signature's verdict. */
interface ReadFile {
  result: SourceResult<RegistryFile>;
  fileWarnings: string[];
  verdict: SignatureVerdict;
}

/**
 * Reads registry files, at most `limits.concurrency` at once, each location once: the walk of
 * {@link loadRegistry} asks for the files in breadth-first order and awaits them in that order, so
 * that the first failure in that order is the one thrown whatever the timing; and as soon as a file
 * is read, the includes it names are started too (within the limits; the walk checks them again
 * and is the one that reports a refused include). Closing it stops the reads still running and
 * waits for the cache writes, which are kept off the way to the next request.
 */
class EagerReader {
  readonly #limits: Required<RegistryLimits>;
  readonly #options: LoadRegistryOptions;
  readonly #stop: LinkedController;
  readonly #limit: <T>(task: () => Promise<T>) => Promise<T>;
  readonly #reads = new Map<string, Promise<ReadFile>>();
  readonly #cacheWrites: Promise<void>[] = [];

  constructor(limits: Required<RegistryLimits>, options: LoadRegistryOptions) {
    this.#limits = limits;
    this.#options = options;
    this.#stop = linkedController(options.signal);
    this.#limit = concurrencyLimiter(Math.max(1, limits.concurrency));
  }

  /** The read of `file`, started now unless it was already. */
  read(file: Pending): Promise<ReadFile> {
    return this.#reads.get(file.location) ?? this.#start(file);
  }

  /** Stops the reads still running; resolves once the cache writes are done. */
  async close(): Promise<void> {
    this.#stop.dispose();
    this.#stop.controller.abort();
    await Promise.all(this.#cacheWrites);
  }

  #start(file: Pending): Promise<ReadFile> {
    const fileWarnings: string[] = [];
    const options = this.#options;
    const read = {
      cacheDir: options.cacheDir,
      signal: this.#stop.controller.signal,
      logger: options.logger,
      http: options.http,
      staleOnError: file.parent !== undefined,
    };
    const reading = this.#limit(async (): Promise<ReadFile> => {
      const policy = options.signatures;
      const checked = policy !== undefined && checksSignatures(policy);
      // The signature first: the file is judged before it is parsed, so that a refused copy is
      // never cached as a good one.
      const signature = checked ? await readSignature(file.location, read) : undefined;
      let verdict: SignatureVerdict = { status: "unverified", file: file.location };
      const accept = (text: string, bytes: Buffer) => {
        if (checked) {
          verdict = judgeRegistryFile(file.location, bytes, signature, policy);
          if (verdict.status === "refused") throw refusalError(verdict);
        }
        return parseRegistry(text, file.location, { onWarning: (w) => fileWarnings.push(w) });
      };
      const result = await readRegistrySource(file.location, accept, {
        ...read,
        maxBytes: this.#limits.maxFileBytes,
        onCacheWrite: (write) => this.#cacheWrites.push(write),
      });
      this.#startIncludes(file, result.value);
      return { result, fileWarnings, verdict };
    });
    reading.catch(() => {}); // awaited by the walk, in order; this keeps it from counting as unhandled
    this.#reads.set(file.location, reading);
    return reading;
  }

  /** Starts reading the includes of `file` that no read was started for, within the limits. */
  #startIncludes(file: Pending, content: RegistryFile): void {
    if (file.depth + 1 > this.#limits.maxDepth || this.#stop.controller.signal.aborted) return;
    for (const include of content.includes) {
      let location: string;
      try {
        location = resolveInclude(file.location, include.url);
      } catch {
        continue; // refused: the walk reports it when it gets there
      }
      if (this.#reads.has(location) || this.#reads.size >= this.#limits.maxFiles) continue;
      this.#start({ location, depth: file.depth + 1, parent: file.location });
    }
  }
}

/**
 * The bytes of the signature of the registry file at `location` (`FILE.minisig`), or undefined
 * when there is none (a 404, or no such local file).
 */
async function readSignature(
  location: string,
  options: Omit<ReadSourceOptions, "maxBytes">,
): Promise<Buffer | undefined> {
  const where = signatureLocation(location);
  try {
    // Never an earlier copy: a signature the mirror no longer serves is no signature.
    const read = await readRegistrySource(where, (_text, bytes) => bytes, {
      ...options,
      staleOnError: false,
      maxBytes: MAX_SIGNATURE_BYTES,
    });
    return read.value;
  } catch (err) {
    // A local file that does not exist, or an HTTP 404 (a TransferError's `status`).
    const localMissing =
      err instanceof RegistryError &&
      err.cause instanceof FileProblemError &&
      err.cause.problem.kind === "missing";
    const notFound = err instanceof AxError && (err as { status?: unknown }).status === 404;
    if (localMissing || notFound) return undefined;
    throw err;
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
