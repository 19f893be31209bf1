/**
 * Writing file contents with holes: blocks of zeros are skipped with positioned writes and the
 * file is extended to its final size at the end, so an ext4 image that is half zeros takes half
 * its size on disk.
 */

import fs from "node:fs";
import { promisify } from "node:util";

/** Granularity of hole detection: an all-zero block of this size is not written. */
export const HOLE_BLOCK = 64 * 1024;
/** Size of the buffers big files are written from. */
export const WRITE_BUFFER = 1024 * 1024;

const ZEROS = Buffer.alloc(HOLE_BLOCK);
const writeAsync = promisify(fs.write);
const ftruncateAsync = promisify(fs.ftruncate);

/** True when `buf[start, end)` (at most {@link HOLE_BLOCK} bytes) is all zeros. */
function isZero(buf: Buffer, start: number, end: number): boolean {
  return buf
    .subarray(start, end)
    .equals(end - start === HOLE_BLOCK ? ZEROS : ZEROS.subarray(0, end - start));
}

/** The `[start, end)` runs of `buf[0, length)` made of blocks that are not all zeros. */
function* dataRuns(buf: Buffer, length: number): Generator<[number, number]> {
  let runStart = -1;
  for (let start = 0; start < length; start += HOLE_BLOCK) {
    const end = Math.min(start + HOLE_BLOCK, length);
    if (isZero(buf, start, end)) {
      if (runStart !== -1) yield [runStart, start];
      runStart = -1;
    } else if (runStart === -1) {
      runStart = start;
    }
  }
  if (runStart !== -1) yield [runStart, length];
}

/**
 * Writes `data` at file offset `position` of `fd` synchronously, skipping zero blocks; returns the
 * offset just past the last byte written (`position` when everything was zeros). For small files.
 */
export function writeWithHolesSync(fd: number, data: Buffer, position: number): number {
  let dataEnd = position;
  for (const [start, end] of dataRuns(data, data.length)) {
    for (let done = start; done < end;) {
      done += fs.writeSync(fd, data, done, end - done, position + done);
    }
    dataEnd = position + end;
  }
  return dataEnd;
}

/**
 * Streams a big file into `fd`: data is gathered into 1 MiB buffers, zero blocks are skipped, and
 * one buffer is written while the next one fills (at most one write in flight). The two buffers are
 * lent by the caller so that consecutive files reuse them.
 */
export class HoleWriter {
  readonly #fd: number;
  readonly #buffers: [Buffer, Buffer];
  #current: 0 | 1 = 0;
  #fill = 0;
  /** File offset of byte 0 of the current buffer. */
  #bufferPosition = 0;
  /** The write in flight: resolves with the offset past its last data byte. */
  #pending: Promise<number> = Promise.resolve(0);
  #dataEnd = 0;

  /** Writes into `fd` (a new, empty file) from the two lent `buffers`. */
  constructor(fd: number, buffers: [Buffer, Buffer]) {
    this.#fd = fd;
    this.#buffers = buffers;
  }

  /** Appends `data` at the current offset. */
  async write(data: Buffer): Promise<void> {
    for (let offset = 0; offset < data.length;) {
      const buffer = this.#buffers[this.#current];
      const n = data.copy(buffer, this.#fill, offset);
      this.#fill += n;
      offset += n;
      if (this.#fill === buffer.length) await this.#flush();
    }
  }

  /** Moves the current offset forward to `position` (for sparse members); the gap stays a hole. */
  async seek(position: number): Promise<void> {
    if (position === this.#bufferPosition + this.#fill) return;
    await this.#flush();
    this.#bufferPosition = position;
  }

  /** Writes what is buffered and sets the file's length to `size`. */
  async finish(size: number): Promise<void> {
    await this.#flush();
    this.#dataEnd = Math.max(this.#dataEnd, await this.#pending);
    if (this.#dataEnd < size) await ftruncateAsync(this.#fd, size);
  }

  /** Waits until no write is in flight, ignoring its outcome (before closing after a failure). */
  async settle(): Promise<void> {
    await this.#pending.catch(() => 0);
  }

  async #flush(): Promise<void> {
    if (this.#fill === 0) return;
    this.#dataEnd = Math.max(this.#dataEnd, await this.#pending);
    this.#pending = this.#writeRuns(this.#buffers[this.#current], this.#fill, this.#bufferPosition);
    this.#pending.catch(() => {}); // observed by the next flush, finish() or settle()
    this.#current = this.#current === 0 ? 1 : 0;
    this.#bufferPosition += this.#fill;
    this.#fill = 0;
  }

  async #writeRuns(buffer: Buffer, length: number, position: number): Promise<number> {
    let dataEnd = 0;
    for (const [start, end] of dataRuns(buffer, length)) {
      for (let done = start; done < end;) {
        const { bytesWritten } = await writeAsync(
          this.#fd,
          buffer,
          done,
          end - done,
          position + done,
        );
        done += bytesWritten;
      }
      dataEnd = position + end;
    }
    return dataEnd;
  }
}
