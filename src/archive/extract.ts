/**
 * The streaming extractor: compressed archive bytes in, a confined directory tree out, in one pass
 * and with bounded memory. See docs/ARCHITECTURE.md ("archive") and SECURITY.md.
 *
 * Bytes flow: write() -> decoder (picked by magic bytes) -> {@link TarReader} -> one member at a
 * time -> {@link ConfinedTree}. Each stage waits for the next one to take its data (backpressure),
 * so write() resolves only once its chunk was taken and memory stays at a few megabytes.
 */

import fs from "node:fs";
import fsp from "node:fs/promises";
import path from "node:path";
import type { Writable } from "node:stream";
import { AbortedError, AxError, fsError, hasCode } from "../errors.js";
import { ChunkQueue } from "./chunk-queue.js";
import { MAGIC_LENGTH, detectFormat, openDecoder, type Decoder } from "./detect.js";
import { HoleWriter, WRITE_BUFFER, writeWithHolesSync } from "./hole-writer.js";
import { printable } from "../text.js";
import {
  ABSOLUTE_PATH,
  ABSOLUTE_PATH_HINT,
  MAX_PATH_BYTES,
  byteLength,
  quoteName,
  refused,
  splitMemberPath,
} from "./member-path.js";
import { blockAligned } from "./sparse.js";
import { TarReader, type TarMember } from "./tar-reader.js";
import { ConfinedTree, type ExtractStats, type OpenFile } from "./tree.js";

export type { ExtractStats } from "./tree.js";

/** Options of {@link ArchiveExtractor} and {@link extractFile}. */
export interface ExtractOptions {
  /** Told about members that were skipped (device nodes, FIFOs) and data after the archive's end. */
  onWarning?: (message: string) => void;
  /** Aborts the extraction: pending and later calls reject with an AbortedError. */
  signal?: AbortSignal;
}

/** Regular files up to this size are read whole, then written with synchronous calls. */
const SMALL_FILE = WRITE_BUFFER;

/** Components of a member's name; refuses the member when the name is unsafe. */
function partsOf(member: string, name = member, role = "path"): string[] {
  const parts = splitMemberPath(name);
  if (typeof parts === "string") {
    const reason = role === "path" ? parts : `${role} ${quoteName(name)}: ${parts}`;
    throw refused(member, reason, parts === ABSOLUTE_PATH ? ABSOLUTE_PATH_HINT : undefined);
  }
  return parts;
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
  /** Where plain tar bytes go (no decoder), or the decoder. */
  #queue: ChunkQueue | undefined;
  #decoder: Decoder | undefined;
  /** The member loop: it never rejects, failures go to #fail. */
  #task: Promise<void> | undefined;
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

  /**
   * Feeds the next bytes of the (possibly compressed) archive; resolves when it may take more,
   * and when the caller may reuse `chunk` (the extractor keeps no reference to it).
   */
  async write(chunk: Buffer): Promise<void> {
    this.#check();
    try {
      if (this.#input) return await this.#input(chunk);
      this.#head.push(Buffer.from(chunk));
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
      else this.#queue?.end();
      await Promise.race([this.#task, this.#failed]);
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
    await Promise.allSettled([this.#ready, this.#task]);
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
    this.#queue?.fail(this.#failure);
  }

  /** Knows the format: starts the decoder (if any) and the member loop, then feeds the head. */
  async #start(): Promise<void> {
    await this.#ready;
    this.#check();
    const head = Buffer.concat(this.#head);
    this.#head = [];
    const format = detectFormat(head);
    let source: AsyncIterable<Buffer>;
    if (format === "tar") {
      const queue = new ChunkQueue();
      this.#queue = queue;
      source = queue;
      // The tar reader keeps pieces of a chunk after taking it: it gets a copy.
      this.#input = (chunk) => Promise.race([queue.push(Buffer.from(chunk)), this.#failed]);
    } else {
      const decoder = openDecoder(format);
      this.#decoder = decoder;
      source = decoder.output();
      this.#input = (chunk) => this.#push(decoder.input, chunk);
    }
    this.#task = this.#extractMembers(new TarReader(source, { onWarning: this.#onWarning }));
    if (head.length > 0) await this.#input(head);
  }

  /**
   * Writes `chunk` to the decoder; resolves once the decoder is done with it (its write callback:
   * consumed by zlib, or written to the tool's stdin), which is also when it can take more, or
   * rejects on failure.
   */
  async #push(stream: Writable, chunk: Buffer): Promise<void> {
    const written = new Promise<void>((resolve) => stream.write(chunk, () => resolve()));
    await Promise.race([written, this.#failed]);
  }

  /** The member loop: one member at a time, in archive order, then what follows the archive. */
  async #extractMembers(reader: TarReader): Promise<void> {
    try {
      for (let member = await reader.next(); member; member = await reader.next()) {
        await this.#extractMember(member, reader);
      }
      await reader.drain();
    } catch (err) {
      this.#fail(err);
    }
  }

  async #extractMember(member: TarMember, reader: TarReader): Promise<void> {
    const name = member.name;
    switch (member.type) {
      case "file":
        return this.#regularFile(member, reader);
      case "directory":
        return this.#tree.directory(name, partsOf(name), member.mode, member.mtime);
      case "symlink":
        return this.#tree.symlink(name, partsOf(name), this.#symlinkTarget(member));
      case "link": {
        const target = member.linkname;
        this.#tree.hardlink(name, partsOf(name), target, partsOf(name, target, "hard link target"));
        return;
      }
      default:
        this.#onWarning(
          `skipped ${member.type} ${quoteName(name)}: device nodes and FIFOs are never created`,
        );
    }
  }

  #symlinkTarget(member: TarMember): string {
    const target = member.linkname;
    if (target === "") throw refused(member.name, "symbolic link without a target");
    if (target.includes("\0")) throw refused(member.name, "symbolic link target has a NUL byte");
    if (byteLength(target) > MAX_PATH_BYTES) {
      throw refused(member.name, `symbolic link target longer than ${MAX_PATH_BYTES} bytes`);
    }
    return target;
  }

  async #regularFile(member: TarMember, reader: TarReader): Promise<void> {
    const parts = partsOf(member.name);
    if (member.sparse === undefined && member.size <= SMALL_FILE) {
      const data = await reader.readAll();
      const file = this.#tree.createFile(member.name, parts, member.mode, member.mtime);
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
    const file = this.#tree.createFile(member.name, parts, member.mode, member.mtime);
    await this.#streamFile(file, member, reader);
  }

  /**
   * Writes a big or sparse member through a {@link HoleWriter}: each stretch of a sparse map is
   * read from the next 512-byte boundary of the member's data (as GNU tar reads it) and written at
   * its offset; the gaps stay holes.
   */
  async #streamFile(file: OpenFile, member: TarMember, reader: TarReader): Promise<void> {
    this.#writeBuffers ??= [Buffer.allocUnsafe(WRITE_BUFFER), Buffer.allocUnsafe(WRITE_BUFFER)];
    const writer = new HoleWriter(file.fd, this.#writeBuffers);
    const segments = member.sparse?.segments ?? [{ offset: 0, length: member.size }];
    const size = member.sparse?.size ?? member.size;
    try {
      let stored = 0;
      for (const { offset, length } of segments) {
        if (length === 0) continue;
        await reader.skipData(blockAligned(stored) - stored);
        stored = blockAligned(stored) + length;
        await writer.seek(offset);
        for (let left = length; left > 0;) {
          const piece = await reader.read(left);
          await writer.write(piece);
          left -= piece.length;
        }
      }
      await writer.finish(size);
    } catch (err) {
      await writer.settle();
      this.#tree.discardFile(file);
      throw err instanceof Error && "syscall" in err
        ? fsError(err, "write", printable(file.path))
        : err;
    }
    this.#tree.closeFile(file, size);
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
