/**
 * The streaming extractor: compressed archive bytes in, a confined directory tree out, in one pass
 * and with bounded memory. See docs/ARCHITECTURE.md ("archive") and SECURITY.md.
 *
 * Bytes flow: write() -> decoder (picked by magic bytes) -> tar-stream parser -> one member at a
 * time -> {@link ConfinedTree}. Each stage waits for the next one to take its data (backpressure),
 * so write() resolves only once its chunk was taken and memory stays at a few megabytes.
 */

import fs from "node:fs";
import fsp from "node:fs/promises";
import path from "node:path";
import type { Extract } from "tar-stream";
import { AbortedError, AxError, fsError, hasCode } from "../errors.js";
import { MAGIC_LENGTH, detectFormat, openDecoder, type Decoder } from "./detect.js";
import { HoleWriter, WRITE_BUFFER, writeWithHolesSync } from "./hole-writer.js";
import { printable } from "../text.js";
import { MAX_PATH_BYTES, quoteName, refused, splitMemberPath } from "./member-path.js";
import {
  SparseMapReader,
  checkSegments,
  sparseLayout,
  type SparseLayout,
  type SparseSegment,
} from "./sparse.js";
import { ConfinedTree, type ExtractStats, type OpenFile } from "./tree.js";

export type { ExtractStats } from "./tree.js";

/** Options of {@link ArchiveExtractor} and {@link extractFile}. */
export interface ExtractOptions {
  /** Told about members that were skipped (device nodes, FIFOs). */
  onWarning?: (message: string) => void;
  /** Aborts the extraction: pending and later calls reject with an AbortedError. */
  signal?: AbortSignal;
}

/** The fields of a tar-stream header this module reads (`pax` is not in tar-stream's types). */
interface TarHeader {
  name: string;
  type: string | null;
  size: number;
  mode: number;
  mtime: Date;
  linkname: string | null;
  pax: Record<string, string> | null;
}

/** Where bytes are pushed with backpressure: a Node stream or a streamx one (the tar parser). */
interface ByteSink {
  write(chunk: Buffer): boolean;
  once(event: "drain", listener: () => void): unknown;
  off(event: "drain", listener: () => void): unknown;
}

/** The data of one member, as the tar parser hands it out. */
type MemberData = AsyncIterable<unknown>;

/** Regular files up to this size are read whole, then written with synchronous calls. */
const SMALL_FILE = WRITE_BUFFER;

/** Reads the whole content of a small member. */
async function collect(stream: MemberData): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks);
}

/** Reads and drops the data of a member that has no content to write. */
async function skip(stream: MemberData): Promise<void> {
  for await (const _chunk of stream);
}

/** A member's mtime in seconds: the pax record (sub-second) when present, else the header's. */
function mtimeOf(header: TarHeader): number {
  const seconds = header.pax?.mtime ? Number(header.pax.mtime) : header.mtime.getTime() / 1000;
  return Number.isFinite(seconds) ? seconds : 0;
}

/** Components of a member's name; refuses the member when the name is unsafe. */
function partsOf(member: string, name = member, role = "path"): string[] {
  const parts = splitMemberPath(name);
  if (typeof parts === "string") {
    throw refused(member, role === "path" ? parts : `${role} ${quoteName(name)}: ${parts}`);
  }
  return parts;
}

/**
 * Why a member's size is not a size, if it is not. tar-stream reads a negative base-256 size field
 * whose other bytes are all 0xff (-1 in two's complement) or a pax `size=-0` as -0, and a
 * base-256 field with a bad first byte as null; both would pass for an empty member.
 */
function checkSize(size: unknown): string | undefined {
  if (typeof size !== "number" || !Number.isSafeInteger(size)) return "unparsable size field";
  if (size < 0 || Object.is(size, -0)) return "negative size";
  return undefined;
}

/** Turns an error of the tar parser into a message naming where the archive went wrong. */
function parserError(err: unknown, lastMember: string | undefined): AxError {
  if (err instanceof AxError) return err;
  const message = err instanceof Error ? err.message : String(err);
  const last = lastMember === undefined ? undefined : quoteName(lastMember);
  const badHeader = message.startsWith("Invalid tar header");
  let text: string;
  if (message === "Unexpected end of data") {
    text = `the archive is truncated (${last ? `in or after member ${last}` : "at its start"})`;
  } else if (badHeader && last === undefined) {
    text = "not a tar archive: the (decompressed) data does not start with a tar header";
  } else {
    const detail = badHeader
      ? "bad header checksum or format"
      : message === "Invalid header"
        ? "invalid member size"
        : message;
    text = `corrupt tar archive ${last ? `after member ${last}` : "at its start"}: ${detail}`;
  }
  return new AxError(text, { cause: err });
}

/** Creates `dest` (and its parents); an existing `dest` must be an empty directory. */
async function prepareDestination(dest: string): Promise<void> {
  try {
    await fsp.mkdir(path.dirname(dest), { recursive: true });
    await fsp.mkdir(dest);
  } catch (err) {
    if (!hasCode(err, "EEXIST")) throw fsError(err, "create directory", dest);
    const stat = await fsp.lstat(dest);
    if (!stat.isDirectory() || (await fsp.readdir(dest)).length > 0) {
      throw new AxError(`cannot extract into ${dest}: it exists and is not an empty directory`);
    }
  }
}

/**
 * Extracts a tar archive (plain, gzip, xz or zstd, told by its first bytes) into `dest`, which it
 * creates and which must not exist or be empty. Feed it with write(), then call end(); or abort().
 * Call write() sequentially, awaiting each. Any refused member, corrupt data or file-system error
 * makes write() or end() reject with an {@link AxError}; the caller then deletes `dest`.
 */
export class ArchiveExtractor {
  readonly #tree: ConfinedTree;
  readonly #onWarning: (message: string) => void;
  readonly #signal: AbortSignal | undefined;
  readonly #onAbort = (): void => this.#fail(new AbortedError("extraction aborted"));
  readonly #ready: Promise<void>;
  readonly #failed: Promise<never>;
  #reject!: (err: AxError) => void;
  #failure: AxError | undefined;
  /** First bytes, kept until there are enough to tell the format. */
  #head: Buffer[] = [];
  #headLength = 0;
  /** Takes the next archive bytes once the format is known. */
  #input: ((chunk: Buffer) => Promise<void>) | undefined;
  #parser: Extract | undefined;
  #decoder: Decoder | undefined;
  /** The member loop and the decoder pump: they never reject, failures go to #fail. */
  readonly #tasks: Promise<void>[] = [];
  #lastMember: string | undefined;
  #writeBuffers: [Buffer, Buffer] | undefined;

  /** Starts creating `dest`; see the class description. */
  constructor(dest: string, options: ExtractOptions = {}) {
    const root = path.resolve(dest);
    this.#tree = new ConfinedTree(root);
    this.#onWarning = options.onWarning ?? (() => {});
    this.#failed = new Promise<never>((_, reject) => {
      this.#reject = reject;
    });
    this.#failed.catch(() => {}); // raced against, never awaited alone
    this.#ready = prepareDestination(root);
    this.#ready.catch(() => {}); // awaited by #start()
    this.#signal = options.signal;
    if (this.#signal?.aborted) this.#onAbort();
    else this.#signal?.addEventListener("abort", this.#onAbort, { once: true });
  }

  /** Feeds the next bytes of the (possibly compressed) archive; resolves when it may take more. */
  async write(chunk: Buffer): Promise<void> {
    this.#check();
    try {
      if (this.#input) return await this.#input(chunk);
      this.#head.push(chunk);
      this.#headLength += chunk.length;
      if (this.#headLength >= MAGIC_LENGTH) await this.#start();
    } catch (err) {
      this.#fail(err);
    }
    this.#check();
  }

  /** No more bytes: finishes decoding and writing; resolves with what was written. */
  async end(): Promise<ExtractStats> {
    this.#check();
    try {
      if (this.#headLength === 0) throw new AxError("the archive is empty");
      if (!this.#input) await this.#start();
      if (this.#decoder) this.#decoder.input.end();
      else this.#parser?.end(undefined);
      await Promise.race([Promise.all(this.#tasks), this.#failed]);
      this.#check();
      this.#tree.finish();
    } catch (err) {
      this.#fail(err);
    }
    this.#check();
    this.#signal?.removeEventListener("abort", this.#onAbort);
    return { ...this.#tree.stats };
  }

  /** Stops now (an error elsewhere); never throws. Resolves once no file is open any more. */
  async abort(): Promise<void> {
    this.#fail(new AbortedError("extraction aborted"));
    await Promise.allSettled([this.#ready, ...this.#tasks]);
  }

  #check(): void {
    if (this.#failure) throw this.#failure;
  }

  /** Records the first failure, makes pending and later calls reject with it, stops everything. */
  #fail(err: unknown): void {
    if (this.#failure) return;
    this.#failure =
      err instanceof AxError
        ? err
        : new AxError(`extraction failed: ${err instanceof Error ? err.message : String(err)}`, {
            cause: err,
          });
    this.#reject(this.#failure);
    this.#signal?.removeEventListener("abort", this.#onAbort);
    this.#decoder?.destroy();
    this.#parser?.destroy(this.#failure);
  }

  /** Knows the format: starts the parser, the member loop and the decoder, then feeds the head. */
  async #start(): Promise<void> {
    await this.#ready;
    const { extract } = await import("tar-stream");
    this.#check();
    const head = Buffer.concat(this.#head);
    this.#head = [];
    const parser = extract();
    this.#parser = parser;
    this.#tasks.push(this.#extractMembers(parser));
    const format = detectFormat(head);
    if (format === "tar") {
      this.#input = (chunk) => this.#push(parser, chunk);
    } else {
      const decoder = openDecoder(format);
      this.#decoder = decoder;
      this.#tasks.push(this.#pump(decoder, parser));
      this.#input = (chunk) => this.#push(decoder.input, chunk);
    }
    if (head.length > 0) await this.#input(head);
  }

  /** Writes `chunk` to `stream`; resolves when the stream can take more (or rejects on failure). */
  async #push(stream: ByteSink, chunk: Buffer): Promise<void> {
    if (stream.write(chunk)) return;
    let onDrain = (): void => {};
    const drained = new Promise<void>((resolve) => {
      onDrain = resolve;
      stream.once("drain", onDrain);
    });
    try {
      await Promise.race([drained, this.#failed]);
    } finally {
      stream.off("drain", onDrain);
    }
  }

  /** Moves decompressed bytes into the parser. */
  async #pump(decoder: Decoder, parser: Extract): Promise<void> {
    try {
      for await (const chunk of decoder.output()) await this.#push(parser, chunk);
      parser.end(undefined);
    } catch (err) {
      this.#fail(err);
    }
  }

  /** The member loop: one member at a time, in archive order. */
  async #extractMembers(parser: Extract): Promise<void> {
    try {
      for await (const entry of parser) {
        const header = entry.header as unknown as TarHeader;
        this.#lastMember = header.name;
        await this.#extractMember(header, entry);
      }
    } catch (err) {
      this.#fail(parserError(err, this.#lastMember));
    }
  }

  async #extractMember(header: TarHeader, stream: MemberData): Promise<void> {
    const name = header.name;
    const sizeProblem = checkSize(header.size);
    if (sizeProblem !== undefined) throw refused(name, sizeProblem);
    switch (header.type) {
      case "file":
      case "contiguous-file":
        return this.#regularFile(header, stream);
      case "directory":
        // tar-stream would parse a directory's data as headers: refuse rather than desynchronize.
        if (header.size > 0) throw refused(name, "directory member with data");
        return this.#tree.directory(name, partsOf(name), header.mode, mtimeOf(header));
      case "symlink":
        this.#tree.symlink(name, partsOf(name), this.#symlinkTarget(header));
        break;
      case "link": {
        const target = header.linkname ?? "";
        this.#tree.hardlink(name, partsOf(name), target, partsOf(name, target, "hard link target"));
        break;
      }
      case "character-device":
      case "block-device":
      case "fifo":
        this.#onWarning(
          `skipped ${header.type} ${quoteName(name)}: device nodes and FIFOs are never created`,
        );
        break;
      default:
        throw refused(
          name,
          "unsupported member type (if old-GNU sparse: re-create the archive with --format=posix)",
        );
    }
    await skip(stream);
  }

  #symlinkTarget(header: TarHeader): string {
    const target = header.linkname ?? "";
    if (target === "") throw refused(header.name, "symbolic link without a target");
    if (target.includes("\0")) throw refused(header.name, "symbolic link target has a NUL byte");
    if (Buffer.byteLength(target) > MAX_PATH_BYTES) {
      throw refused(header.name, `symbolic link target longer than ${MAX_PATH_BYTES} bytes`);
    }
    return target;
  }

  async #regularFile(header: TarHeader, stream: MemberData): Promise<void> {
    const layout = sparseLayout(header.pax, header.name);
    if (typeof layout === "string") throw refused(header.name, layout);
    const name = layout?.name ?? header.name;
    const parts = partsOf(name);
    const mtime = mtimeOf(header);
    if (layout === undefined && header.size <= SMALL_FILE) {
      const data = await collect(stream);
      const file = this.#tree.createFile(name, parts, header.mode, mtime);
      try {
        if (writeWithHolesSync(file.fd, data, 0) < data.length) {
          fs.ftruncateSync(file.fd, data.length);
        }
      } catch (err) {
        this.#tree.discardFile(file);
        throw fsError(err, "write", printable(file.path));
      }
      return this.#tree.closeFile(file, data.length);
    }
    const file = this.#tree.createFile(name, parts, header.mode, mtime);
    await this.#streamFile(file, name, header.size, layout, stream);
  }

  /** Writes a big or sparse member through a {@link HoleWriter}. */
  async #streamFile(
    file: OpenFile,
    name: string,
    size: number,
    layout: SparseLayout | undefined,
    stream: MemberData,
  ): Promise<void> {
    this.#writeBuffers ??= [Buffer.allocUnsafe(WRITE_BUFFER), Buffer.allocUnsafe(WRITE_BUFFER)];
    const writer = new HoleWriter(file.fd, this.#writeBuffers);
    const realSize = layout?.realSize ?? size;
    const mapReader = layout && !layout.segments ? new SparseMapReader() : undefined;
    let segments: SparseSegment[] = layout?.segments ?? [{ offset: 0, length: size }];
    let index = -1;
    let left = 0;
    try {
      if (layout?.segments) this.#checkSparse(name, segments, realSize, size);
      for await (const chunk of stream) {
        let data = chunk as Buffer;
        if (mapReader && !mapReader.done) {
          const rest = mapReader.push(data);
          if (typeof rest === "string") throw refused(name, rest);
          if (!mapReader.done) continue;
          segments = mapReader.segments;
          this.#checkSparse(name, segments, realSize, size - mapReader.mapBytes);
          data = rest;
        }
        while (data.length > 0) {
          while (left === 0) {
            const segment = segments[++index];
            if (segment === undefined) throw refused(name, "more data than its sparse map holds");
            left = segment.length;
            await writer.seek(segment.offset);
          }
          const n = Math.min(left, data.length);
          await writer.write(data.subarray(0, n));
          left -= n;
          data = data.subarray(n);
        }
      }
      if (mapReader && !mapReader.done) throw refused(name, "corrupt GNU sparse map");
      await writer.finish(realSize);
    } catch (err) {
      await writer.settle();
      this.#tree.discardFile(file);
      throw err instanceof Error && "syscall" in err
        ? fsError(err, "write", printable(file.path))
        : err;
    }
    this.#tree.closeFile(file, realSize);
  }

  #checkSparse(name: string, segments: SparseSegment[], realSize: number, dataSize: number): void {
    const problem = checkSegments(segments, realSize, dataSize);
    if (problem !== undefined) throw refused(name, problem);
  }
}

/**
 * Extracts the archive file `archivePath` into `dest` with an {@link ArchiveExtractor} (for an
 * archive already in the store whose tree is missing). On failure, `dest` is left for the caller
 * to delete.
 */
export async function extractFile(
  archivePath: string,
  dest: string,
  options: ExtractOptions = {},
): Promise<ExtractStats> {
  const extractor = new ArchiveExtractor(dest, options);
  try {
    const input = fs.createReadStream(archivePath, { highWaterMark: WRITE_BUFFER });
    try {
      for await (const chunk of input) await extractor.write(chunk as Buffer);
    } catch (err) {
      throw err instanceof AxError ? err : fsError(err, "read", archivePath);
    } finally {
      input.destroy();
    }
    return await extractor.end();
  } catch (err) {
    await extractor.abort();
    throw err;
  }
}
