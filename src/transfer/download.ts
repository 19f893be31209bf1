/**
 * The resumable download, written once for every source (`sources.ts`): bytes go to the `.part`
 * file (through a file descriptor, with real backpressure) and to a sink, in one pass, while their
 * sha256 is checked. The validator that makes a later resume safe (ETag, else Last-Modified), the
 * URL it belongs to and the total size live in the `.part`'s metadata file, written before the
 * first byte is appended. A source asked to resume answers with the rest, or says it cannot; an
 * answer that cannot be spliced restarts from byte 0, so the result is never a spliced file. A cut
 * or stalled connection is resumed in the same run, on a budget of retries renewed by progress; a
 * source that cannot serve the file gives way to the next one (mirrors first, the original last).
 */
import { createHash, type Hash } from "node:crypto";
import { constants } from "node:fs";
import { open, rm, type FileHandle } from "node:fs/promises";
import type { Readable } from "node:stream";
import { AxError, ChecksumError, fsError, hasCode, throwIfAborted } from "../errors.js";
import { silentLogger, type Logger } from "../log.js";
import { replaceFile } from "../atomic-file.js";
import { readRegularFile } from "../regular-file.js";
import { toTransferError, TransferError } from "./http.js";
import { RetryBudget } from "./retry.js";
import type { Integrity, ResumePoint, Source } from "./sources.js";
import type { LowSpeedRule } from "./watchdog.js";

/** Body bytes gathered before they are written and fed to the sink (also the replay size). */
const BATCH_BYTES = 1 << 20;

/** Where the downloaded bytes go, besides the `.part` file. */
export interface DownloadSink {
  /** Start again from byte 0: drop everything consumed so far. */
  reset(): Promise<void>;
  /**
   * The next bytes, in order, exactly once each since the last reset; resolves when it may take
   * more. `chunk` is lent: the download overwrites it once the promise settles, so a sink copies
   * what it keeps beyond that.
   */
  write(chunk: Buffer): Promise<void>;
}

/** How far a download got. */
export interface DownloadProgress {
  /** Bytes of the file had so far (including those resumed from an earlier run). */
  received: number;
  /** Size of the whole file, when the server said. */
  total?: number;
  /**
   * Bytes of `received` that an earlier run had downloaded (its `.part`, which a source agreed
   * to continue): the bytes of this run are `received - resumed`. 0 for a fresh download.
   */
  resumed: number;
}

/** The files a download writes; the store says where they are. */
export interface PartPaths {
  /** The `.part` file: the bytes received so far. */
  path: string;
  /** Its resume metadata (URL, validator, size): removed together with the `.part`. */
  meta: string;
}

/** Options of {@link download}. */
export interface DownloadOptions {
  /** Where the bytes come from, in order: mirrors first, the original last (`openSources`). */
  sources: readonly Source[];
  /** The `.part` and its metadata: resumed when they are there. */
  part: PartPaths;
  /** Receives every byte of the file, in order. */
  sink: DownloadSink;
  /**
   * Checks the file's sha256 as the bytes flow: a mismatch removes the `.part` and its metadata
   * and fails with a ChecksumError naming the file and the source that served it.
   */
  integrity?: Integrity;
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
  /** The source that served the file: its {@link Source.name}. */
  url: string;
  /** Size of the complete `.part`. */
  size: number;
  /** Body bytes received in this run (not counting bytes resumed from an earlier run). */
  transferred: number;
  /** With `integrity`: the sha256 of the file, the one expected. */
  sha256?: string;
}

/** Contents of the {@link PartPaths.meta} file. */
interface PartMeta {
  /** The candidate URL the validator came from: a resume only ever asks this URL. */
  url: string;
  /** Strong ETag, else Last-Modified: what `If-Range` sends. */
  validator: string;
  /** Total size of the file, when known. */
  size?: number;
}

const PROGRESS_INTERVAL_MS = 100;
/** Resume metadata is a URL and a validator; anything bigger is not it. */
const MAX_META_BYTES = 64 * 1024;

const { O_RDWR, O_CREAT, O_EXCL } = constants;
/** Absent on Windows, which has no symbolic links to fear here. */
const O_NOFOLLOW = constants.O_NOFOLLOW ?? 0;

/**
 * The `.part` at `path`, opened for reading and writing (created when missing). Only a regular
 * file is written to: a link in its place (a restored cache, a hand-made link) or a FIFO is
 * replaced by a new file, never written through, since it may lead to a file outside the store.
 */
async function openPart(path: string): Promise<FileHandle> {
  try {
    const fh = await open(path, O_RDWR | O_NOFOLLOW);
    if ((await fh.stat()).isFile()) return fh;
    await fh.close();
  } catch (err) {
    if (!hasCode(err, "ENOENT") && !hasCode(err, "ELOOP")) throw err;
  }
  await rm(path, { force: true });
  return open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW, 0o666);
}

async function readMeta(path: string): Promise<PartMeta | undefined> {
  try {
    // A regular file only: a FIFO in its place (a restored cache) is never waited on.
    const text = (await readRegularFile(path, MAX_META_BYTES)).toString("utf8");
    const meta = JSON.parse(text) as Partial<PartMeta>;
    if (typeof meta.url !== "string" || typeof meta.validator !== "string") return undefined;
    const size = typeof meta.size === "number" ? meta.size : undefined;
    return { url: meta.url, validator: meta.validator, size };
  } catch {
    return undefined; // absent or unreadable: no resume
  }
}

/**
 * The `.part` file and the sink, kept in step: `offset` bytes of the `.part` are good, and `fed`
 * of them went to the sink since its last reset (fewer only until an earlier run's bytes are
 * replayed, which happens once the server agreed to resume).
 */
class PartFile {
  readonly #path: string;
  readonly #metaPath: string;
  readonly #fh: FileHandle;
  readonly #sink: DownloadSink;
  readonly #onProgress: ((progress: DownloadProgress) => void) | undefined;
  #meta: PartMeta | undefined;
  #fed = 0;
  #lastProgress = 0;
  /**
   * Where body bytes are gathered (and replayed `.part` bytes read) before they go to the `.part`
   * and the sink: one buffer for the whole download, reused once both are done with it, so that
   * no fresh memory is touched per MiB received.
   */
  #batch: Buffer | undefined;
  /** Good bytes in the `.part`. */
  offset: number;
  /** Size of the whole file, when known. */
  total: number | undefined;
  /** Body bytes received in this run. */
  transferred = 0;
  /** Good bytes of the `.part` an earlier run left, until a restart from byte 0. */
  resumed: number;

  private constructor(
    { path, meta: metaPath }: PartPaths,
    fh: FileHandle,
    sink: DownloadSink,
    meta: PartMeta | undefined,
    size: number,
    onProgress: ((progress: DownloadProgress) => void) | undefined,
  ) {
    this.#path = path;
    this.#metaPath = metaPath;
    this.#fh = fh;
    this.#sink = sink;
    this.#meta = meta;
    this.#onProgress = onProgress;
    this.offset = meta === undefined ? 0 : size;
    this.resumed = this.offset;
    this.total = meta?.size;
  }

  /** Opens (or creates) the `.part`; its bytes count only if its metadata is there. */
  static async open(
    paths: PartPaths,
    sink: DownloadSink,
    onProgress?: (progress: DownloadProgress) => void,
  ): Promise<PartFile> {
    const { path } = paths;
    let fh: FileHandle;
    try {
      fh = await openPart(path);
    } catch (err) {
      throw fsError(err, "open", path);
    }
    const [{ size }, meta] = await Promise.all([fh.stat(), readMeta(paths.meta)]);
    return new PartFile(paths, fh, sink, meta, size, onProgress);
  }

  /** Where to resume `url`'s file from, or undefined when only a restart is possible. */
  resumeFrom(url: string): ResumePoint | undefined {
    if (this.offset === 0 || this.#meta?.url !== url) return undefined;
    return { offset: this.offset, validator: this.#meta.validator };
  }

  /**
   * Starts again from byte 0 with a new file from `url`: the old metadata goes first, then the
   * bytes, then the new metadata is written (when there is a validator), so that no crash can
   * leave metadata that vouches for bytes of another file.
   */
  async restart(url: string, validator: string | undefined, total: number | undefined) {
    const metaPath = this.#metaPath;
    try {
      await rm(metaPath, { force: true });
      await this.#fh.truncate(0);
      this.#meta = validator === undefined ? undefined : { url, validator, size: total };
      if (this.#meta !== undefined) {
        await replaceFile(metaPath, JSON.stringify(this.#meta), { fsync: false });
      }
    } catch (err) {
      throw fsError(err, "write", metaPath);
    }
    if (this.#fed > 0) await this.#sink.reset();
    this.offset = 0;
    this.resumed = 0;
    this.#fed = 0;
    this.total = total;
  }

  /** The server agreed to resume: feed the sink the `.part` bytes it has not seen yet. */
  async catchUp(total: number | undefined): Promise<void> {
    if (total !== undefined) this.total = total;
    if (this.#fed === this.offset) return;
    await this.#sink.reset();
    const chunk = this.#batchBuffer();
    for (let position = 0; position < this.offset;) {
      let bytesRead: number;
      try {
        const length = Math.min(chunk.length, this.offset - position);
        ({ bytesRead } = await this.#fh.read(chunk, 0, length, position));
      } catch (err) {
        throw fsError(err, "read", this.#path);
      }
      if (bytesRead === 0) throw new AxError(`${this.#path} shrank while being resumed`);
      await this.#sink.write(chunk.subarray(0, bytesRead));
      position += bytesRead;
    }
    this.#fed = this.offset;
  }

  #batchBuffer(): Buffer {
    this.#batch ??= Buffer.allocUnsafeSlow(BATCH_BYTES);
    return this.#batch;
  }

  /** Appends the next body bytes to the `.part` and the sink, both at once; `chunk` is free again
   *  when it resolves (or rejects). */
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
      this.#onProgress?.({ ...this.#progress(), received: this.offset + pending });
    }
  }

  /** Tells the progress callback where the download stands. */
  reportProgress(): void {
    this.#onProgress?.(this.#progress());
  }

  #progress(): DownloadProgress {
    return { received: this.offset, total: this.total, resumed: this.resumed };
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
    // write, the hash and the extractor by an order of magnitude. They are copied into the one
    // batch buffer: append() resolves only once the `.part`, the hash and the sink are done with
    // it.
    const batch = this.#batchBuffer();
    let batched = 0;
    const flush = async () => {
      if (batched === 0) return;
      const length = batched;
      batched = 0;
      await this.append(batch.subarray(0, length));
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
        const received = next.value;
        for (let copied = 0; copied < received.length;) {
          const n = received.copy(batch, batched, copied);
          copied += n;
          batched += n;
          if (batched === batch.length) await flush();
        }
        this.throttledProgress(batched);
      }
    } finally {
      body.destroy();
    }
  }

  /** Closes the file descriptor; never throws. */
  async close(): Promise<void> {
    await this.#fh.close().catch(() => {});
  }

  /** Closes and deletes the `.part` and its metadata: their bytes are not the file. */
  async discard(): Promise<void> {
    await this.close();
    await Promise.all([rm(this.#path, { force: true }), rm(this.#metaPath, { force: true })]);
  }
}

/** Shared settings of one {@link download} call. */
interface Context {
  part: PartFile;
  /** Name of the last source. */
  original: string;
  options: DownloadOptions;
  logger: Logger;
}

/** The failure of a body that ended before the size its source announced, if it did. */
function cutShort(part: PartFile, url: string): TransferError | undefined {
  if (part.total === undefined || part.offset >= part.total) return undefined;
  return new TransferError(url, `connection closed at byte ${part.offset} of ${part.total}`, {
    retryable: true,
  });
}

/**
 * Completes the `.part` from one source: resumes when the `.part` came from it, follows cuts and
 * stalls by resuming in the same run, and throws a {@link TransferError} when it cannot serve the
 * file (a failure status, or retries without progress exhausted).
 */
async function fetchFrom(source: Source, { part, original, options, logger }: Context) {
  const { signal, retries, retryBaseMs, stallTimeoutMs, lowSpeed } = options;
  // A mirror nobody answers at costs one attempt; the original, the last hope, keeps its retries.
  const failFastWhenUnreachable = source.name !== original;
  const budget = new RetryBudget({ retries, retryBaseMs, logger, signal, failFastWhenUnreachable });
  const request = {
    resumeFrom: (url: string) => part.resumeFrom(url),
    budget,
    signal,
    stallTimeoutMs,
    lowSpeed,
  };
  let announced = false;
  /** The furthest the `.part` got: only going past it counts as progress (a server that cuts
   *  every answer at the same byte without allowing a resume must not loop forever). */
  let furthest = part.offset;
  for (;;) {
    throwIfAborted(signal);
    const answer = await source.open(request);
    if (answer.kind === "complete") {
      await part.catchUp(answer.total);
      return;
    }
    if (answer.kind === "restart") {
      await part.restart(answer.url, undefined, undefined);
      if (answer.retry === undefined || (await budget.retry(answer.retry.reason))) continue;
      throw answer.retry.exhausted;
    }
    if (answer.start > 0) await part.catchUp(answer.total);
    else await part.restart(answer.url, answer.validator, answer.total);
    part.reportProgress();
    if (!announced && source.name !== original) logger.info(`downloading from ${source.name}`);
    announced = true;

    const pumped = await part.pump(answer.body, answer.url, signal);
    if (answer.local) {
      if (pumped !== undefined) throw pumped;
      return;
    }
    const failure = pumped ?? cutShort(part, answer.url);
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

/** `sink`, with the sha256 of the bytes it took since its last reset. */
function hashing(sink: DownloadSink): { sink: DownloadSink; digest(): string } {
  let hash: Hash = createHash("sha256");
  return {
    sink: {
      reset: async () => {
        hash = createHash("sha256");
        await sink.reset();
      },
      write: (chunk) => {
        hash.update(chunk);
        return sink.write(chunk);
      },
    },
    digest: () => hash.digest("hex"),
  };
}

/**
 * Downloads the file `sources` serve (mirrors first, the original last) into the `.part`, feeding
 * every byte to `sink`. An existing `.part` with its metadata is resumed; an answer that cannot be
 * spliced restarts from byte 0 (`sink.reset()`). A source that cannot serve the file (404, 403,
 * retries exhausted) gives way to the next; when all fail, an {@link AxError} names the original
 * and the last reason. With `integrity`, the bytes must have its sha256 (see
 * {@link DownloadOptions.integrity}). On success the `.part` is complete (renaming it, and
 * removing its metadata, is the caller's job).
 */
export async function download(options: DownloadOptions): Promise<DownloadResult> {
  const names = options.sources.map((source) => source.name);
  const original = names.at(-1);
  if (original === undefined) throw new AxError("download: no URL given");
  const logger = options.logger ?? silentLogger;
  const hashed = options.integrity === undefined ? undefined : hashing(options.sink);
  const part = await PartFile.open(options.part, hashed?.sink ?? options.sink, options.onProgress);
  let served: string | undefined;
  try {
    let last: TransferError | undefined;
    for (const source of options.sources) {
      try {
        await fetchFrom(source, { part, original, options, logger });
      } catch (err) {
        if (!(err instanceof TransferError)) throw err;
        last = err;
        if (source.name !== original) logger.info(`${err.message}; trying the next URL`);
        continue;
      }
      part.reportProgress();
      served = source.name;
      break;
    }
    if (served === undefined) {
      const tried = names.length > 1 ? `tried ${names.join(", ")}` : undefined;
      throw new AxError(`cannot download ${original}: ${last?.reason}`, {
        cause: last,
        hint: tried ?? last?.hint,
      });
    }
  } finally {
    await part.close();
  }
  const result: DownloadResult = { url: served, size: part.offset, transferred: part.transferred };
  if (hashed === undefined || options.integrity === undefined) return result;
  const { sha256, what } = options.integrity;
  result.sha256 = hashed.digest();
  if (result.sha256 !== sha256) {
    await part.discard();
    throw new ChecksumError(
      `checksum mismatch for ${what}: expected ${sha256}, got ${result.sha256} (from ${served})`,
      { hint: "the registry entry or the file on the server is wrong; nothing was kept" },
    );
  }
  return result;
}
