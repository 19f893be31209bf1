/**
 * The resumable download: bytes go to `<archive>.part` (through a file descriptor, with real
 * backpressure) and to a sink, in one pass. The validator that makes a later resume safe (ETag,
 * else Last-Modified), the URL it belongs to and the total size live in `<partPath>.json`, written
 * before the first byte is appended. A resume asks for the rest with `Range` + `If-Range`; any
 * answer that cannot be spliced restarts from byte 0, so the result is never a spliced file.
 */
import { createReadStream } from "node:fs";
import { open, rename, readFile, rm, stat, writeFile, type FileHandle } from "node:fs/promises";
import { Readable } from "node:stream";
import { fileURLToPath } from "node:url";
import { AxError, fsError, hasCode, throwIfAborted } from "../errors.js";
import { silentLogger, type Logger } from "../log.js";
import { statusReason, toTransferError, TransferError } from "./http.js";
import { isRetryableStatus, requestWithBudget, RetryBudget } from "./retry.js";
import type { LowSpeedRule } from "./watchdog.js";

/** Body bytes gathered before they are written and fed to the sink. */
const BATCH_BYTES = 1 << 20;

/** Where the downloaded bytes go, besides the `.part` file. */
export interface DownloadSink {
  /** Start again from byte 0: drop everything consumed so far. */
  reset(): Promise<void>;
  /** The next bytes, in order, exactly once each since the last reset; resolves when it may take more. */
  write(chunk: Buffer): Promise<void>;
}

/** Where a candidate's bytes are and how to ask for them (see {@link DownloadCandidate}). */
export interface HttpSource {
  /** The http(s) URL to request; the `.part`'s resume metadata is tied to it. */
  url: string;
  /** Headers sent with every request to `url` (an `Authorization` header never follows a redirect
   *  to another origin). */
  headers?: Record<string, string>;
  /**
   * Called when `url` answers 401 (an expired token, say) with its `WWW-Authenticate` value:
   * resolves with the headers to try again with. A second 401 in a row fails the candidate.
   */
  reauthorize?: (challenge: string | undefined) => Promise<Record<string, string>>;
}

/** A candidate that is more than a URL: it finds its {@link HttpSource} when its turn comes. */
export interface DownloadCandidate {
  /** Names the candidate in messages and in {@link DownloadResult.url} (an `oci://` URL, say). */
  name: string;
  /** Finds the bytes. A {@link TransferError} moves on to the next candidate; any other error
   *  ends the download. */
  resolve(signal?: AbortSignal): Promise<HttpSource>;
}

/** How far a download got. */
export interface DownloadProgress {
  /** Bytes of the file had so far (including those resumed from an earlier run). */
  received: number;
  /** Size of the whole file, when the server said. */
  total?: number;
}

/** Options of {@link download}. */
export interface DownloadOptions {
  /** Candidates in order, mirrors first, the original last: URLs, or {@link DownloadCandidate}s. */
  urls: (string | DownloadCandidate)[];
  /** The `.part` file; its resume metadata lives in {@link partMetaPath}(partPath). */
  partPath: string;
  /** Receives every byte of the file, in order. */
  sink: DownloadSink;
  /** Cancels the download (the `.part` is kept for a later resume). */
  signal?: AbortSignal;
  /** Called as bytes arrive (throttled), and once at the end. */
  onProgress?: (progress: DownloadProgress) => void;
  /** Told about retries, and which URL served when it is a mirror. */
  logger?: Logger;
  /** No byte for this long: abandon the connection and resume (default `DEFAULT_STALL_TIMEOUT_MS`). */
  stallTimeoutMs?: number;
  /** Slower than this: abandon the connection and resume (default `DEFAULT_LOW_SPEED`).
   *  Unlike a stall, a connection abandoned as too slow does not renew the retries. */
  lowSpeed?: LowSpeedRule;
  /** Retries without progress per URL (default `DEFAULT_RETRIES`); the count restarts whenever bytes flowed. */
  retries?: number;
  /** Backoff base in ms (default 500, or `AXVISOR_IMAGE_RETRY_BASE_MS`). */
  retryBaseMs?: number;
}

/** What {@link download} did. */
export interface DownloadResult {
  /** The candidate that served the file: its URL, or its {@link DownloadCandidate.name}. */
  url: string;
  /** Size of the complete `.part`. */
  size: number;
  /** Body bytes received in this run (not counting bytes resumed from an earlier run). */
  transferred: number;
}

/** The resume metadata beside a `.part` file: remove it together with the `.part`. */
export function partMetaPath(partPath: string): string {
  return `${partPath}.json`;
}

/** Contents of the {@link partMetaPath} file. */
interface PartMeta {
  /** The candidate URL the validator came from: a resume only ever asks this URL. */
  url: string;
  /** Strong ETag, else Last-Modified: what `If-Range` sends. */
  validator: string;
  /** Total size of the file, when known. */
  size?: number;
}

const PROGRESS_INTERVAL_MS = 100;
const REPLAY_CHUNK = 1 << 20;

async function readMeta(path: string): Promise<PartMeta | undefined> {
  try {
    const meta = JSON.parse(await readFile(path, "utf8")) as Partial<PartMeta>;
    if (typeof meta.url !== "string" || typeof meta.validator !== "string") return undefined;
    const size = typeof meta.size === "number" ? meta.size : undefined;
    return { url: meta.url, validator: meta.validator, size };
  } catch {
    return undefined; // absent or unreadable: no resume
  }
}

/** The validator `If-Range` may use: a strong ETag, else Last-Modified. */
function validatorOf(headers: Record<string, string | undefined>): string | undefined {
  const etag = headers["etag"];
  if (etag !== undefined && !etag.startsWith("W/")) return etag;
  return headers["last-modified"];
}

/** `Content-Range: bytes START-END/TOTAL` (or `bytes *\/TOTAL`), parsed; TOTAL may be `*`. */
function parseContentRange(
  value: string | undefined,
): { start: number | undefined; total: number | undefined } | undefined {
  const match = /^bytes\s+(?:(\d+)-\d+|\*)\/(\d+|\*)$/.exec(value?.trim() ?? "");
  if (!match) return undefined;
  const [, start, total] = match;
  return {
    start: start === undefined ? undefined : Number(start),
    total: total === undefined || total === "*" ? undefined : Number(total),
  };
}

function contentLength(headers: Record<string, string | undefined>): number | undefined {
  const value = headers["content-length"];
  return value !== undefined && /^\d+$/.test(value) ? Number(value) : undefined;
}

/**
 * The `.part` file and the sink, kept in step: `offset` bytes of the `.part` are good, and `fed`
 * of them went to the sink since its last reset (fewer only until an earlier run's bytes are
 * replayed, which happens once the server agreed to resume).
 */
class PartFile {
  readonly #path: string;
  readonly #fh: FileHandle;
  readonly #sink: DownloadSink;
  readonly #onProgress: ((progress: DownloadProgress) => void) | undefined;
  #meta: PartMeta | undefined;
  #fed = 0;
  #lastProgress = 0;
  /** Good bytes in the `.part`. */
  offset: number;
  /** Size of the whole file, when known. */
  total: number | undefined;
  /** Body bytes received in this run. */
  transferred = 0;

  private constructor(
    path: string,
    fh: FileHandle,
    sink: DownloadSink,
    meta: PartMeta | undefined,
    size: number,
    onProgress: ((progress: DownloadProgress) => void) | undefined,
  ) {
    this.#path = path;
    this.#fh = fh;
    this.#sink = sink;
    this.#meta = meta;
    this.#onProgress = onProgress;
    this.offset = meta === undefined ? 0 : size;
    this.total = meta?.size;
  }

  /** Opens (or creates) the `.part`; its bytes count only if its metadata is there. */
  static async open(
    path: string,
    sink: DownloadSink,
    onProgress?: (progress: DownloadProgress) => void,
  ): Promise<PartFile> {
    let fh: FileHandle;
    try {
      fh = await open(path, "r+").catch((err: unknown) => {
        if (hasCode(err, "ENOENT")) return open(path, "w+");
        throw err;
      });
    } catch (err) {
      throw fsError(err, "open", path);
    }
    const [{ size }, meta] = await Promise.all([fh.stat(), readMeta(partMetaPath(path))]);
    return new PartFile(path, fh, sink, meta, size, onProgress);
  }

  /** `Range` + `If-Range` to ask `url` for the rest, or none when only a restart is possible. */
  resumeHeaders(url: string): Record<string, string> {
    if (this.offset === 0 || this.#meta?.url !== url) return {};
    return { range: `bytes=${this.offset}-`, "if-range": this.#meta.validator };
  }

  /**
   * Starts again from byte 0 with a new file from `url`: the old metadata goes first, then the
   * bytes, then the new metadata is written (when there is a validator), so that no crash can
   * leave metadata that vouches for bytes of another file.
   */
  async restart(url: string, validator: string | undefined, total: number | undefined) {
    const metaPath = partMetaPath(this.#path);
    try {
      await rm(metaPath, { force: true });
      await this.#fh.truncate(0);
      this.#meta = validator === undefined ? undefined : { url, validator, size: total };
      if (this.#meta !== undefined) {
        await writeFile(`${metaPath}.tmp`, JSON.stringify(this.#meta));
        await rename(`${metaPath}.tmp`, metaPath);
      }
    } catch (err) {
      throw fsError(err, "write", metaPath);
    }
    if (this.#fed > 0) await this.#sink.reset();
    this.offset = 0;
    this.#fed = 0;
    this.total = total;
  }

  /** The server agreed to resume: feed the sink the `.part` bytes it has not seen yet. */
  async catchUp(total: number | undefined): Promise<void> {
    if (total !== undefined) this.total = total;
    if (this.#fed === this.offset) return;
    await this.#sink.reset();
    for (let position = 0; position < this.offset;) {
      const chunk = Buffer.allocUnsafe(Math.min(REPLAY_CHUNK, this.offset - position));
      let bytesRead: number;
      try {
        ({ bytesRead } = await this.#fh.read(chunk, 0, chunk.length, position));
      } catch (err) {
        throw fsError(err, "read", this.#path);
      }
      if (bytesRead === 0) throw new AxError(`${this.#path} shrank while being resumed`);
      await this.#sink.write(chunk.subarray(0, bytesRead));
      position += bytesRead;
    }
    this.#fed = this.offset;
  }

  /** Appends the next body bytes to the `.part` and the sink, both at once. */
  async append(chunk: Buffer): Promise<void> {
    const [written, consumed] = await Promise.allSettled([
      this.#writeAt(chunk, this.offset),
      this.#sink.write(chunk),
    ]);
    if (written.status === "rejected") throw fsError(written.reason, "write", this.#path);
    if (consumed.status === "rejected") throw consumed.reason;
    this.offset += chunk.length;
    this.#fed += chunk.length;
    this.transferred += chunk.length;
  }

  /** Reports `pending` more bytes received (not yet appended), at most every 100 ms. */
  throttledProgress(pending: number): void {
    const now = Date.now();
    if (now - this.#lastProgress >= PROGRESS_INTERVAL_MS) {
      this.#lastProgress = now;
      this.#onProgress?.({ received: this.offset + pending, total: this.total });
    }
  }

  /** Tells the progress callback where the download stands. */
  reportProgress(): void {
    this.#onProgress?.({ received: this.offset, total: this.total });
  }

  async #writeAt(chunk: Buffer, position: number): Promise<void> {
    for (let done = 0; done < chunk.length;) {
      const { bytesWritten } = await this.#fh.write(
        chunk,
        done,
        chunk.length - done,
        position + done,
      );
      done += bytesWritten;
    }
  }

  /**
   * Appends a whole body; resolves with the failure that cut it short when that failure was the
   * network's (file and sink errors reject), or undefined when the body ended.
   */
  async pump(
    body: Readable,
    url: string,
    signal?: AbortSignal,
  ): Promise<TransferError | undefined> {
    const chunks = body[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
    // Network chunks are small (~64 KiB); batching them cuts the per-chunk cost of the file
    // write, the hash and the extractor by an order of magnitude.
    let batch: Buffer[] = [];
    let batched = 0;
    const flush = async () => {
      if (batched === 0) return;
      const chunk = batch.length === 1 ? batch[0]! : Buffer.concat(batch, batched);
      batch = [];
      batched = 0;
      await this.append(chunk);
    };
    try {
      for (;;) {
        let next: IteratorResult<Buffer>;
        try {
          next = await chunks.next();
        } catch (err) {
          await flush();
          const failure = toTransferError(err, url, signal);
          if (failure instanceof TransferError) return failure;
          throw failure;
        }
        if (next.done) {
          await flush();
          return undefined;
        }
        batch.push(next.value);
        batched += next.value.length;
        this.throttledProgress(batched);
        if (batched >= BATCH_BYTES) await flush();
      }
    } finally {
      body.destroy();
    }
  }

  /** Closes the file descriptor; never throws. */
  async close(): Promise<void> {
    await this.#fh.close().catch(() => {});
  }
}

/** Shared settings of one {@link download} call. */
interface Context {
  part: PartFile;
  /** Name of the last candidate. */
  original: string;
  options: DownloadOptions;
  logger: Logger;
}

/** Copies a `file://` URL into the `.part` (always from byte 0: a local copy needs no resume). */
async function copyLocalFile(url: string, { part, options }: Context): Promise<void> {
  let path: string;
  let size: number;
  try {
    path = fileURLToPath(url);
    const st = await stat(path);
    size = st.size;
    if (!st.isFile()) {
      throw new TransferError(url, "not a regular file", { retryable: false });
    }
  } catch (err) {
    if (err instanceof TransferError) throw err;
    throw toTransferError(err, url, options.signal);
  }
  await part.restart(url, undefined, size);
  // Never more than the size seen: a file growing while it is copied cannot fill the disk.
  const input =
    size === 0 ? Readable.from([]) : createReadStream(path, { start: 0, end: size - 1 });
  const failure = await part.pump(input, url, options.signal);
  if (failure !== undefined) throw failure;
}

/**
 * Completes the `.part` from one http(s) source (named `name` in messages): resumes when the
 * `.part` came from its URL, follows cuts and stalls by resuming in the same run, and throws a
 * {@link TransferError} when it cannot serve the file (a failure status, or retries without
 * progress exhausted).
 */
async function fetchFromSource(
  source: HttpSource,
  name: string,
  { part, original, options, logger }: Context,
) {
  const { url } = source;
  const { signal, retries, retryBaseMs } = options;
  // A mirror nobody answers at costs one attempt; the original URL, the last hope, keeps its retries.
  const failFastWhenUnreachable = name !== original;
  const budget = new RetryBudget({ retries, retryBaseMs, logger, signal, failFastWhenUnreachable });
  let announced = false;
  let auth = source.headers ?? {};
  let reauthorized = false;
  /** The furthest the `.part` got: only going past it counts as progress (a server that cuts
   *  every answer at the same byte without allowing a resume must not loop forever). */
  let furthest = part.offset;
  for (;;) {
    throwIfAborted(signal);
    const resume = part.resumeHeaders(url);
    const from = resume["range"] === undefined ? 0 : part.offset;
    const request = {
      headers: { ...auth, ...resume },
      signal,
      stallTimeoutMs: options.stallTimeoutMs,
      lowSpeed: options.lowSpeed,
    };
    const response = await requestWithBudget(url, request, budget);
    if (response.status === 401 && source.reauthorize !== undefined && !reauthorized) {
      response.body.destroy();
      auth = await source.reauthorize(response.headers["www-authenticate"]);
      reauthorized = true;
      continue;
    }
    reauthorized = false;
    const range = parseContentRange(response.headers["content-range"]);
    if (response.status === 416 && from > 0) {
      response.body.destroy();
      if (range?.total === from) {
        await part.catchUp(range.total); // the .part was complete already
        return;
      }
      await part.restart(url, undefined, undefined);
      continue;
    }
    if (response.status === 206 && from > 0 && range?.start === from) {
      await part.catchUp(range.total);
    } else if (response.status === 200) {
      await part.restart(url, validatorOf(response.headers), contentLength(response.headers));
    } else {
      response.body.destroy();
      if (response.status !== 206) {
        throw new TransferError(url, statusReason(response.status), {
          status: response.status,
          retryable: isRetryableStatus(response.status),
        });
      }
      await part.restart(url, undefined, undefined); // a range we did not ask for: start over
      const got = response.headers["content-range"] ?? "no Content-Range";
      if (await budget.retry(`${url}: answered ${got} when asked from byte ${from}`)) continue;
      throw new TransferError(url, "answers with unusable byte ranges", { retryable: false });
    }
    if (!announced && name !== original) logger.info(`downloading from ${name}`);
    announced = true;

    const failure =
      (await part.pump(response.body, url, signal)) ??
      (part.total === undefined || part.offset >= part.total
        ? undefined
        : new TransferError(url, `connection closed at byte ${part.offset} of ${part.total}`, {
            retryable: true,
          }));
    if (failure === undefined) return;
    if (part.offset > furthest) {
      furthest = part.offset;
      // A server dripping bytes makes progress, but must not keep the retries alive forever.
      if (!failure.tooSlow) budget.progressed();
    }
    if (!budget.mayRetry(failure)) throw failure;
    if (!(await budget.retry(failure.message))) throw budget.gaveUp(failure);
  }
}

function candidateName(candidate: string | DownloadCandidate): string {
  return typeof candidate === "string" ? candidate : candidate.name;
}

/**
 * Downloads the file the candidate `urls` name (mirrors first, the original last) into
 * `partPath`, feeding every byte to `sink`. An existing `.part` with its metadata is resumed with
 * `Range` + `If-Range`; an answer that cannot be spliced restarts from byte 0 (`sink.reset()`).
 * A URL that cannot serve the file (404, 403, retries exhausted) moves on to the next; when all
 * fail, an {@link AxError} names the original URL and the last reason. On success the `.part` is
 * complete (renaming it, and removing {@link partMetaPath}, is the caller's job).
 */
export async function download(options: DownloadOptions): Promise<DownloadResult> {
  const names = options.urls.map(candidateName);
  const original = names.at(-1);
  if (original === undefined) throw new AxError("download: no URL given");
  const logger = options.logger ?? silentLogger;
  const part = await PartFile.open(options.partPath, options.sink, options.onProgress);
  try {
    let last: TransferError | undefined;
    for (const candidate of options.urls) {
      const name = candidateName(candidate);
      const context = { part, original, options, logger };
      try {
        if (typeof candidate !== "string") {
          await fetchFromSource(await candidate.resolve(options.signal), name, context);
        } else if (candidate.startsWith("file:")) await copyLocalFile(candidate, context);
        else await fetchFromSource({ url: candidate }, name, context);
      } catch (err) {
        if (!(err instanceof TransferError)) throw err;
        last = err;
        if (name !== original) logger.info(`${err.message}; trying the next URL`);
        continue;
      }
      part.reportProgress();
      return { url: name, size: part.offset, transferred: part.transferred };
    }
    const tried = names.length > 1 ? `tried ${names.join(", ")}` : undefined;
    throw new AxError(`cannot download ${original}: ${last?.reason}`, {
      cause: last,
      hint: tried ?? last?.hint,
    });
  } finally {
    await part.close();
  }
}
