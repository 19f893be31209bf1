/**
 * GNU sparse members in pax archives (`tar --sparse --format=posix`): formats 1.0 (the map is at
 * the start of the member's data) and 0.1 (the map is a pax record). Format 0.0 repeats pax keys,
 * which the tar parser cannot keep, so it is refused, as is the old GNU `S` type (see extract.ts).
 */

/** One stretch of real data in a sparse file. */
export interface SparseSegment {
  /** Where the stretch starts in the real file. */
  offset: number;
  /** How many bytes of the member's data it holds. */
  length: number;
}

/** What the pax records say about a sparse member. */
export interface SparseLayout {
  /** The member's real name (the header's name is a `GNUSparseFile.N/...` placeholder). */
  name: string;
  /** The file's real size. */
  realSize: number;
  /** The map, when the pax records carry it (0.1); absent when it opens the data (1.0). */
  segments?: SparseSegment[];
}

/** Longest sparse map accepted at the start of a 1.0 member, in bytes. */
export const MAX_SPARSE_MAP_BYTES = 4 * 1024 * 1024;

const NUMBER = /^\d{1,16}$/;

function parseNumber(text: string): number | undefined {
  return NUMBER.test(text) ? Number(text) : undefined;
}

function pairs(numbers: number[]): SparseSegment[] {
  const segments: SparseSegment[] = [];
  for (let i = 0; i + 1 < numbers.length; i += 2) {
    segments.push({ offset: numbers[i] ?? 0, length: numbers[i + 1] ?? 0 });
  }
  return segments;
}

/**
 * The sparse layout described by a member's pax records, `undefined` for an ordinary member, or
 * the reason (a string) when the records describe a sparse format this extractor does not handle.
 */
export function sparseLayout(
  pax: Record<string, string> | null,
  headerName: string,
): SparseLayout | undefined | string {
  if (!pax || !Object.keys(pax).some((key) => key.startsWith("GNU.sparse."))) return undefined;
  const major = pax["GNU.sparse.major"];
  const minor = pax["GNU.sparse.minor"];
  if (major !== undefined || minor !== undefined) {
    if (major !== "1" || minor !== "0")
      return `GNU sparse format ${major}.${minor} is not supported`;
    const name = pax["GNU.sparse.name"];
    const realSize = parseNumber(pax["GNU.sparse.realsize"] ?? "");
    if (!name || realSize === undefined) return "GNU sparse 1.0 member without name or size";
    return { name, realSize };
  }
  const map = pax["GNU.sparse.map"];
  if (map === undefined) return "GNU sparse format 0.0 is not supported (re-create with 1.0)";
  const realSize = parseNumber(pax["GNU.sparse.size"] ?? "");
  const numbers = map === "" ? [] : map.split(",").map(parseNumber);
  if (realSize === undefined || numbers.length % 2 !== 0 || numbers.includes(undefined)) {
    return "corrupt GNU sparse 0.1 map";
  }
  return {
    name: pax["GNU.sparse.name"] ?? headerName,
    realSize,
    segments: pairs(numbers as number[]),
  };
}

/**
 * Checks that `segments` are in order, do not overlap, fit in `realSize` and hold exactly
 * `dataSize` bytes; returns the reason when they do not.
 */
export function checkSegments(
  segments: SparseSegment[],
  realSize: number,
  dataSize: number,
): string | undefined {
  let end = 0;
  let total = 0;
  for (const { offset, length } of segments) {
    if (offset < end || offset + length > realSize) return "corrupt GNU sparse map";
    end = offset + length;
    total += length;
  }
  return total === dataSize ? undefined : "GNU sparse map does not match the member's size";
}

/**
 * Reads the decimal map that opens the data of a 1.0 sparse member (count, then offset and length
 * lines, padded with zeros to a 512-byte block). Feed it chunks until {@link SparseMapReader.done}.
 */
export class SparseMapReader {
  /** True once the map and its padding were consumed. */
  done = false;
  /** Bytes the map took, padding included (valid once done). */
  mapBytes = 0;
  #numbers: number[] = [];
  #expected = -1;
  #line = "";
  #padding = 0;

  /**
   * Consumes the start of `chunk`; returns the bytes past the map (sparse data) once done, or the
   * reason when the map is corrupt or too long.
   */
  push(chunk: Buffer): Buffer | string {
    let i = 0;
    while (!this.#padding && !this.done && i < chunk.length) {
      const newline = chunk.indexOf(0x0a, i);
      const end = newline === -1 ? chunk.length : newline;
      this.#line += chunk.toString("latin1", i, end);
      this.mapBytes += end - i + (newline === -1 ? 0 : 1);
      i = end + 1;
      if (this.#line.length > 16 || this.mapBytes > MAX_SPARSE_MAP_BYTES) {
        return "corrupt GNU sparse map";
      }
      if (newline === -1) break;
      const value = parseNumber(this.#line);
      this.#line = "";
      if (value === undefined) return "corrupt GNU sparse map";
      if (this.#expected === -1) this.#expected = 1 + 2 * value;
      else this.#numbers.push(value);
      if (this.#numbers.length + 1 === this.#expected) {
        this.#padding = (512 - (this.mapBytes % 512)) % 512;
        this.mapBytes += this.#padding;
        if (this.#padding === 0) this.done = true;
      }
    }
    i = Math.min(i, chunk.length);
    if (this.#padding) {
      const skip = Math.min(this.#padding, chunk.length - i);
      this.#padding -= skip;
      i += skip;
      if (this.#padding === 0) this.done = true;
    }
    return chunk.subarray(i);
  }

  /** The map read (valid once done). */
  get segments(): SparseSegment[] {
    return pairs(this.#numbers);
  }
}
