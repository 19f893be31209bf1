/**
 * Reading one registry file from an http(s) URL or a local file, within limits (size, text only),
 * with conditional requests against a per-URL cache of earlier answers.
 *
 * The cache holds, per URL, one file named by the sha256 of the URL: a JSON line with the URL and
 * its validators (ETag, Last-Modified), then the body. It is written atomically (temporary file,
 * rename) and only with bodies the caller accepted, so a cached copy is always a usable one.
 */

import { createHash } from "node:crypto";
import { mkdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { replaceFile } from "../atomic-file.js";
import { AbortedError, AxError, fsError, throwIfAborted } from "../errors.js";
import { silentLogger, type Logger } from "../log.js";
import type { LowSpeedRule } from "../transfer/watchdog.js";
import {
  FileProblemError,
  describeProblem,
  formatLimit,
  readRegularFile,
} from "../regular-file.js";
import { RegistryError } from "./errors.js";
import { isRemote } from "./location.js";
import { SignatureError } from "./signature.js";

/** Largest registry file read: 16 MiB. */
export const MAX_REGISTRY_FILE_BYTES = 16 * 1024 * 1024;

/**
 * Where an answer came from: `network` (a 200), `not-modified` (a 304: the cached copy),
 * `stale` (the request failed: the cached copy of an earlier read), `file` (a local file).
 */
export type SourceOrigin = "network" | "not-modified" | "stale" | "file";

/** Tuning of the HTTP requests (see the transfer layer for the defaults). */
export interface RegistryHttpOptions {
  /** Retries after the first attempt of each file. */
  retries?: number;
  /** Backoff base of the retries, in ms. */
  retryBaseMs?: number;
  /** Give up on a server that sends nothing for this long, in ms. */
  stallTimeoutMs?: number;
  /** Give up on a server slower than this (default 1 KiB/s over 30 s). */
  lowSpeed?: LowSpeedRule;
  /** Give up on a file not complete after this long, retries included, in ms (0: never);
   *  default `AXVISOR_IMAGE_REGISTRY_TIMEOUT` seconds, else 2 minutes. */
  deadlineMs?: number;
}

/** Options of {@link readRegistrySource}. */
export interface ReadSourceOptions {
  /** Directory of the conditional-request cache; none: no cache. */
  cacheDir?: string;
  /** Cancels the read (AbortedError). */
  signal?: AbortSignal;
  /** Retries and cache problems are reported here. */
  logger?: Logger;
  /** Size limit in bytes; default {@link MAX_REGISTRY_FILE_BYTES}. */
  maxBytes?: number;
  /** Retry and timeout tuning of HTTP requests. */
  http?: RegistryHttpOptions;
  /** When reading fails and the cache holds an earlier copy, answer with it (origin `stale`). */
  staleOnError?: boolean;
  /**
   * Takes the write of the fresh copy into the cache instead of waiting for it: the answer comes
   * back as soon as it was accepted, and the caller awaits the write (which never rejects: a
   * failure only warns) before it is done.
   */
  onCacheWrite?: (write: Promise<void>) => void;
}

/** What {@link readRegistrySource} read. */
export interface SourceResult<T> {
  /** What the caller's `accept` made of the text. */
  value: T;
  /** Where the text came from. */
  origin: SourceOrigin;
  /** For origin `stale`: why the fresh copy could not be used. */
  staleBecause?: AxError;
}

interface CachedCopy {
  etag?: string;
  lastModified?: string;
  /** The body's exact bytes, as served (a signature covers them). */
  body: Buffer;
}

/**
 * Reads the registry file at `location` (as made by `toLocation`) and hands its text and its exact
 * bytes to `accept` (typically a parser, which throws on a bad file); a remote body is cached only
 * once accepted, byte for byte.
 *
 * @throws RegistryError or TransferError naming the URL or path: unreadable, HTTP status other
 *   than 200/304, larger than the limit, not UTF-8 text; or whatever `accept` throws.
 */
export async function readRegistrySource<T>(
  location: string,
  accept: (text: string, bytes: Buffer) => T,
  options: ReadSourceOptions = {},
): Promise<SourceResult<T>> {
  throwIfAborted(options.signal);
  const maxBytes = options.maxBytes ?? MAX_REGISTRY_FILE_BYTES;
  if (!isRemote(location)) {
    const bytes = await readLocalRegistryFile(location, maxBytes);
    return { value: accept(decodeRegistryText(bytes, location), bytes), origin: "file" };
  }
  const cacheFile =
    options.cacheDir === undefined ? undefined : cachePath(options.cacheDir, location);
  const cached = cacheFile === undefined ? undefined : await readCachedCopy(cacheFile, location);
  try {
    return await withinDeadline(location, options, (signal) =>
      fetchRemote(location, accept, cached, cacheFile, { ...options, signal, maxBytes }),
    );
  } catch (err) {
    // A refused signature is no outage: the earlier copy does not stand in for a tampered one.
    const usable =
      options.staleOnError &&
      cached !== undefined &&
      err instanceof AxError &&
      !(err instanceof SignatureError);
    if (!usable || err instanceof AbortedError || options.signal?.aborted) throw err;
    const value = accept(decodeRegistryText(cached.body, location), cached.body);
    return { value, origin: "stale", staleBecause: err };
  }
}

/**
 * Runs `fetch` (a fetch of `url`, retries included) within the deadline of
 * {@link RegistryHttpOptions.deadlineMs}, with the signal it must use.
 */
async function withinDeadline<T>(
  url: string,
  options: ReadSourceOptions,
  fetch: (signal: AbortSignal | undefined) => Promise<T>,
): Promise<T> {
  const [{ withDeadline }, { TransferError }, { registryDeadlineMsFromEnv }] = await Promise.all([
    import("../transfer/watchdog.js"),
    import("../transfer/http.js"),
    import("../transfer/tuning.js"),
  ]);
  const deadlineMs = options.http?.deadlineMs ?? registryDeadlineMsFromEnv();
  const expired = () =>
    new TransferError(url, `no complete answer within ${deadlineMs / 1000} s`, {
      retryable: false,
      hint: "the server is too slow; AXVISOR_IMAGE_REGISTRY_TIMEOUT sets this limit (seconds)",
    });
  return withDeadline(deadlineMs, options.signal, fetch, expired);
}

async function fetchRemote<T>(
  url: string,
  accept: (text: string, bytes: Buffer) => T,
  cached: CachedCopy | undefined,
  cacheFile: string | undefined,
  options: ReadSourceOptions & { maxBytes: number },
): Promise<SourceResult<T>> {
  const { RetryBudget, requestWithBudget } = await import("../transfer/retry.js");
  const { statusReason, toTransferError, TransferError } = await import("../transfer/http.js");
  const logger = options.logger ?? silentLogger;
  const headers: Record<string, string> = {};
  if (cached?.etag !== undefined) headers["if-none-match"] = cached.etag;
  if (cached?.lastModified !== undefined) headers["if-modified-since"] = cached.lastModified;
  const { stallTimeoutMs, lowSpeed, retries, retryBaseMs } = options.http ?? {};
  const request = {
    headers,
    signal: options.signal,
    stallTimeoutMs,
    lowSpeed,
    retries,
    retryBaseMs,
  };
  const budget = new RetryBudget({ ...request, logger });
  for (;;) {
    const response = await requestWithBudget(url, request, budget);
    if (response.status === 304 && cached !== undefined) {
      response.body.destroy();
      const value = accept(decodeRegistryText(cached.body, url), cached.body);
      return { value, origin: "not-modified" };
    }
    if (response.status !== 200) {
      response.body.destroy();
      const { status } = response;
      throw new TransferError(url, statusReason(status), { retryable: false, status });
    }
    let bytes: Buffer;
    try {
      bytes = await readAtMost(response.body, options.maxBytes, url, response.headers);
    } catch (err) {
      const failure = toTransferError(err, url, options.signal);
      if (
        failure instanceof TransferError &&
        failure.retryable &&
        (await budget.retry(failure.message))
      ) {
        continue;
      }
      throw failure;
    }
    const value = accept(decodeRegistryText(bytes, url), bytes);
    if (cacheFile !== undefined) {
      const copy = {
        etag: response.headers["etag"],
        lastModified: response.headers["last-modified"],
      };
      const writing = writeCachedCopy(cacheFile, url, copy, bytes, logger);
      if (options.onCacheWrite) options.onCacheWrite(writing);
      else await writing;
    }
    return { value, origin: "network" };
  }
}

/**
 * The bytes of the local registry file at `path`, within `maxBytes`.
 *
 * @throws RegistryError naming the path when it is missing, not a regular file or too large.
 */
export async function readLocalRegistryFile(path: string, maxBytes: number): Promise<Buffer> {
  try {
    return await readRegularFile(path, maxBytes);
  } catch (err) {
    if (err instanceof FileProblemError) {
      const { problem } = err;
      const detail =
        problem.kind === "too-large" ? `registry file is ${describeProblem(problem)}` : undefined;
      throw new RegistryError(detail === undefined ? err.message : `${path}: ${detail}`, {
        cause: err,
      });
    }
    throw fsError(err, "read", path);
  }
}

/** The whole of `stream`, or a RegistryError as soon as it passes `maxBytes`. */
async function readAtMost(
  stream: Readable,
  maxBytes: number,
  source: string,
  headers: Record<string, string | undefined> = {},
): Promise<Buffer> {
  const tooLarge = () => {
    stream.destroy();
    return new RegistryError(`${source}: registry file is larger than ${formatLimit(maxBytes)}`);
  };
  if (Number(headers["content-length"] ?? 0) > maxBytes) throw tooLarge();
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream) {
    const bytes = chunk as Buffer;
    size += bytes.length;
    if (size > maxBytes) throw tooLarge();
    chunks.push(bytes);
  }
  return Buffer.concat(chunks, size);
}

/** `bytes` as UTF-8 text (a byte-order mark dropped), refusing NUL bytes and invalid UTF-8. */
export function decodeRegistryText(bytes: Buffer, source: string): string {
  if (bytes.includes(0))
    throw new RegistryError(`${source}: not a text file (it contains NUL bytes)`);
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch (err) {
    throw new RegistryError(`${source}: not a text file (invalid UTF-8)`, { cause: err });
  }
}

function cachePath(cacheDir: string, url: string): string {
  return join(cacheDir, `${createHash("sha256").update(url).digest("hex")}.toml`);
}

/** The cached copy of `url`, or undefined when there is none (or it is unreadable). */
async function readCachedCopy(file: string, url: string): Promise<CachedCopy | undefined> {
  let content: Buffer;
  try {
    content = await readFile(file);
  } catch {
    return undefined;
  }
  const newline = content.indexOf(0x0a);
  if (newline < 0) return undefined;
  try {
    const meta = JSON.parse(content.subarray(0, newline).toString("utf8")) as Record<
      string,
      unknown
    >;
    if (meta.url !== url) return undefined;
    return {
      etag: typeof meta.etag === "string" ? meta.etag : undefined,
      lastModified: typeof meta.lastModified === "string" ? meta.lastModified : undefined,
      body: content.subarray(newline + 1),
    };
  } catch {
    return undefined;
  }
}

/** Stores the copy of `url`; a failure only warns (the cache is an optimization). */
async function writeCachedCopy(
  file: string,
  url: string,
  validators: { etag: string | undefined; lastModified: string | undefined },
  body: Buffer,
  logger: Logger,
): Promise<void> {
  try {
    await mkdir(join(file, ".."), { recursive: true });
    const meta = Buffer.from(`${JSON.stringify({ url, ...validators })}\n`);
    // The store's own cache: a link in its place is replaced, never written through.
    await replaceFile(file, Buffer.concat([meta, body]), { fsync: false });
  } catch (err) {
    logger.warn(`cannot cache ${url}: ${fsError(err, "write", file).message}`);
  }
}
