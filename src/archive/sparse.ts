/**
 * GNU sparse members, in every format GNU tar writes: old GNU (type `S`, the map in the header and
 * its extension blocks; read by tar-reader.ts), and pax formats 0.0 (repeated offset/numbytes
 * records), 0.1 (a `GNU.sparse.map` record) and 1.0 (a decimal map opening the member's data).
 * Each map is checked the same way, and the data is laid out as GNU tar reads it: each stretch
 * starts on a 512-byte boundary of the member's data, and the file ends where the map ends.
 */

import type { PaxRecords } from "./pax.js";

/** One stretch of real data in a sparse file. */
export interface SparseSegment {
  /** Where the stretch starts in the real file. */
  offset: number;
  /** How many bytes of the member's data it holds. */
  length: number;
}

/** What the pax records of a sparse member say. */
export interface PaxSparse {
  /** The member's real name (`GNU.sparse.name`), when given. */
  name: Buffer | undefined;
  /** The file's size as recorded (`GNU.sparse.realsize` or `GNU.sparse.size`). */
  realSize: number;
  /** The map (formats 0.0 and 0.1); absent for 1.0, whose map opens the member's data. */
  segments?: SparseSegment[];
}

/** Longest sparse map accepted (a `GNU.sparse.map` record, or the map opening 1.0 data). */
export const MAX_SPARSE_MAP_BYTES = 4 * 1024 * 1024;
/** Most entries accepted in a sparse map, whatever its format. */
export const MAX_SPARSE_SEGMENTS = 256 * 1024;

const DECIMAL = /^\d{1,20}$/;

/** A decimal number of at most 2^53 - 1, or `undefined`. */
export function parseDecimal(text: string): number | undefined {
  if (!DECIMAL.test(text)) return undefined;
  const value = Number(text);
  return Number.isSafeInteger(value) ? value : undefined;
}

/** `position` rounded up to a 512-byte boundary. */
export function blockAligned(position: number): number {
  return Math.ceil(position / 512) * 512;
}

function pairs(numbers: number[]): SparseSegment[] {
  const segments: SparseSegment[] = [];
  for (let i = 0; i + 1 < numbers.length; i += 2) {
    segments.push({ offset: numbers[i] ?? 0, length: numbers[i + 1] ?? 0 });
  }
  return segments;
}

function text(records: PaxRecords, key: string): string | undefined {
  return records.values.get(key)?.toString("latin1");
}

/** Refuses a map whose declared number of entries is not its length. */
function checkCount(records: PaxRecords, segments: SparseSegment[]): string | undefined {
  const numblocks = text(records, "GNU.sparse.numblocks");
  if (numblocks === undefined || parseDecimal(numblocks) === segments.length) return undefined;
  return "corrupt GNU sparse map (GNU.sparse.numblocks does not match the map)";
}

/**
 * What a member's pax records say about its sparse layout: `undefined` for an ordinary member, or
 * the reason (a string) when the records describe a sparse map that cannot be used.
 */
export function paxSparse(records: PaxRecords | undefined): PaxSparse | undefined | string {
  if (!records) return undefined;
  const keys = [...records.values.keys()];
  if (!keys.some((key) => key.startsWith("GNU.sparse.")) && records.segments.length === 0) {
    return records.sparseProblem;
  }
  const name = records.values.get("GNU.sparse.name");
  const realSize = parseDecimal(
    text(records, "GNU.sparse.realsize") ?? text(records, "GNU.sparse.size") ?? "",
  );
  const major = text(records, "GNU.sparse.major");
  const minor = text(records, "GNU.sparse.minor");
  if (major !== undefined || minor !== undefined) {
    if (major !== "1" || minor !== "0") {
      return `GNU sparse format ${major ?? "?"}.${minor ?? "?"} is not supported`;
    }
    if (realSize === undefined) return "GNU sparse 1.0 member without a valid real size";
    return { name, realSize };
  }
  if (realSize === undefined) return "GNU sparse member without a valid size";
  const map = text(records, "GNU.sparse.map");
  if (map !== undefined) {
    if (map.length > MAX_SPARSE_MAP_BYTES) return "GNU sparse map longer than 4 MiB";
    const numbers = map === "" ? [] : map.split(",").map(parseDecimal);
    if (numbers.length % 2 !== 0 || numbers.includes(undefined)) return "corrupt GNU sparse map";
    if (numbers.length / 2 > MAX_SPARSE_SEGMENTS) {
      return `GNU sparse map of more than ${MAX_SPARSE_SEGMENTS} entries`;
    }
    const segments = pairs(numbers as number[]);
    return checkCount(records, segments) ?? { name, realSize, segments };
  }
  if (records.sparseProblem !== undefined) return records.sparseProblem;
  return checkCount(records, records.segments) ?? { name, realSize, segments: records.segments };
}

/**
 * The length of the file a sparse map makes, as GNU tar makes it (the end of the map's furthest
 * entry: GNU writers end every map with a `(size, 0)` entry), or the reason the map is refused: an
 * entry past `realSize`, overlapping entries, or stored data (each stretch starting on a 512-byte
 * boundary, as GNU tar reads it) that does not fill exactly the member's `dataSize` bytes.
 */
export function sparseFileSize(
  segments: SparseSegment[],
  realSize: number,
  dataSize: number,
): number | string {
  let stored = 0;
  let size = 0;
  let sorted = true;
  let previousEnd = 0;
  for (const { offset, length } of segments) {
    if (offset > realSize - length) return "corrupt GNU sparse map (data past the file's size)";
    if (length > 0) stored = blockAligned(stored) + length;
    size = Math.max(size, offset + length);
    if (offset < previousEnd) sorted = false;
    previousEnd = Math.max(previousEnd, offset + length);
  }
  if (stored !== dataSize) return "GNU sparse map does not match the member's size";
  if (!sorted) {
    // GNU tar writes the stretches in map order; they only must not overlap.
    let end = 0;
    for (const { offset, length } of [...segments].sort((a, b) => a.offset - b.offset)) {
      if (length === 0) continue;
      if (offset < end) return "corrupt GNU sparse map (overlapping entries)";
      end = offset + length;
    }
  }
  return size;
}

/**
 * Reads the decimal map that opens the data of a 1.0 sparse member (a count, then offset and
 * length lines, padded with zeros to a 512-byte block), one block at a time.
 */
export class SparseMapReader {
  /** Bytes of member data the map took so far (whole blocks). */
  bytes = 0;
  #numbers: number[] = [];
  #expected = -1;
  #line = "";

  /** Consumes the next block; true once the map is complete, or the reason it is refused. */
  push(block: Buffer): boolean | string {
    this.bytes += block.length;
    if (this.bytes > MAX_SPARSE_MAP_BYTES) return "GNU sparse map longer than 4 MiB";
    for (let i = 0; ;) {
      const newline = block.indexOf(0x0a, i);
      this.#line += block.toString("latin1", i, newline === -1 ? block.length : newline);
      if (this.#line.length > 20) return "corrupt GNU sparse map";
      if (newline === -1) return false;
      i = newline + 1;
      const value = parseDecimal(this.#line);
      this.#line = "";
      if (value === undefined) return "corrupt GNU sparse map";
      if (this.#expected !== -1) {
        this.#numbers.push(value);
      } else if (value > MAX_SPARSE_SEGMENTS) {
        return `GNU sparse map of more than ${MAX_SPARSE_SEGMENTS} entries`;
      } else {
        this.#expected = 2 * value;
      }
      if (this.#numbers.length === this.#expected) return true;
    }
  }

  /** The map read (once complete). */
  get segments(): SparseSegment[] {
    return pairs(this.#numbers);
  }
}
