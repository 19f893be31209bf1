/**
 * Pax extended headers (`x` for the next member, `g` for all that follow): records
 * `LENGTH KEY=VALUE\n`, parsed as their bytes stream in. Only the keys the extractor uses are
 * kept, each up to a limit; every other record is skipped as it passes, so a header of any size
 * (a 2 MiB comment, large extended attributes) takes bounded memory.
 */

import { MAX_PATH_BYTES } from "./member-path.js";
import {
  MAX_SPARSE_MAP_BYTES,
  MAX_SPARSE_SEGMENTS,
  parseDecimal,
  type SparseSegment,
} from "./sparse.js";

/** The records of one pax header that the extractor uses. */
export interface PaxRecords {
  /** Single-valued keys (the last record wins), as raw bytes, cut one byte past their limit. */
  values: Map<string, Buffer>;
  /** GNU sparse 0.0: the map of repeated `GNU.sparse.offset` / `numbytes` records, in order. */
  segments: SparseSegment[];
  /** Why the 0.0 records do not make a map, if they do not. */
  sparseProblem?: string;
}

const NUMBER_LIMIT = 64;
/** Keys kept, with the longest value kept: longer ones are refused where they are used. */
const KEPT = new Map<string, number>([
  ["path", MAX_PATH_BYTES],
  ["linkpath", MAX_PATH_BYTES],
  ["size", NUMBER_LIMIT],
  ["mtime", NUMBER_LIMIT],
  ["GNU.sparse.major", NUMBER_LIMIT],
  ["GNU.sparse.minor", NUMBER_LIMIT],
  ["GNU.sparse.name", MAX_PATH_BYTES],
  ["GNU.sparse.realsize", NUMBER_LIMIT],
  ["GNU.sparse.size", NUMBER_LIMIT],
  ["GNU.sparse.numblocks", NUMBER_LIMIT],
  ["GNU.sparse.map", MAX_SPARSE_MAP_BYTES],
  ["GNU.sparse.offset", NUMBER_LIMIT],
  ["GNU.sparse.numbytes", NUMBER_LIMIT],
]);
/** Longest key compared with the kept ones; the rest of a longer key is not kept. */
const KEY_LIMIT = 64;

const State = {
  Start: 0,
  Length: 1,
  Blanks: 2,
  Key: 3,
  Value: 4,
  Newline: 5,
  /** A NUL where a record would start: the records ended (GNU tar ignores the rest). */
  End: 6,
} as const;
type State = (typeof State)[keyof typeof State];

const SPACE = 0x20;
const TAB = 0x09;
const EQUALS = 0x3d;
const NEWLINE = 0x0a;

function isDigit(byte: number): boolean {
  return byte >= 0x30 && byte <= 0x39;
}

/**
 * Parses the data of one pax header: feed it with {@link PaxParser.push}, then call
 * {@link PaxParser.finish}.
 */
export class PaxParser {
  #state: State = State.Start;
  #problem: string | undefined;
  /** Declared length of the current record, and how many of its bytes were read. */
  #length = 0;
  #digits = 0;
  #used = 0;
  #key: number[] = [];
  #valueLeft = 0;
  #valueLimit = 0;
  #valueKept = 0;
  #value: Buffer[] = [];
  #pendingOffset: number | undefined;
  readonly #records: PaxRecords = { values: new Map(), segments: [] };

  /** Consumes the next bytes of the header's data. */
  push(chunk: Buffer): void {
    let i = 0;
    while (i < chunk.length && this.#problem === undefined) {
      const byte = chunk[i] ?? 0;
      switch (this.#state) {
        case State.Start:
          if (byte === SPACE || byte === TAB) {
            i++;
            this.#used++;
          } else if (byte === 0) {
            this.#state = State.End;
          } else if (isDigit(byte)) {
            this.#state = State.Length;
          } else {
            this.#problem = "missing record length";
          }
          break;
        case State.Length:
          if (isDigit(byte)) {
            this.#length = this.#length * 10 + byte - 0x30;
            if (++this.#digits > 15) this.#problem = "record length out of range";
            i++;
            this.#used++;
          } else if (byte === SPACE || byte === TAB) {
            this.#state = State.Blanks;
          } else {
            this.#problem = "missing blank after the record length";
          }
          break;
        case State.Blanks:
          if (byte === SPACE || byte === TAB) {
            i++;
            this.#used++;
          } else {
            this.#state = State.Key;
          }
          break;
        case State.Key: {
          const equals = chunk.indexOf(EQUALS, i);
          const end = equals === -1 ? chunk.length : equals;
          for (let k = i; k < end && this.#key.length <= KEY_LIMIT; k++) {
            this.#key.push(chunk[k] ?? 0);
          }
          this.#used += end - i;
          i = end;
          if (this.#used >= this.#length) {
            this.#problem = "missing equal sign";
          } else if (equals !== -1) {
            i++;
            this.#used++;
            this.#startValue();
          }
          break;
        }
        case State.Value: {
          const n = Math.min(this.#valueLeft, chunk.length - i);
          const keep = Math.min(n, this.#valueLimit - this.#valueKept);
          if (keep > 0) {
            this.#value.push(chunk.subarray(i, i + keep));
            this.#valueKept += keep;
          }
          this.#valueLeft -= n;
          this.#used += n;
          i += n;
          if (this.#valueLeft === 0) this.#state = State.Newline;
          break;
        }
        case State.Newline:
          if (byte !== NEWLINE) {
            this.#problem = "missing newline at the end of a record";
          } else {
            i++;
            this.#endRecord();
          }
          break;
        case State.End:
          return;
      }
    }
  }

  /** The records, or why the header is malformed. */
  finish(): PaxRecords | string {
    if (this.#problem !== undefined) return `malformed pax header: ${this.#problem}`;
    if (this.#state !== State.Start && this.#state !== State.End) {
      return "malformed pax header: its last record is cut short";
    }
    if (this.#pendingOffset !== undefined)
      this.#sparseProblem("GNU.sparse.offset without numbytes");
    return this.#records;
  }

  #startValue(): void {
    this.#valueLeft = this.#length - this.#used - 1;
    if (this.#valueLeft < 0) {
      this.#problem = "record length out of range";
      return;
    }
    const limit = this.#key.length <= KEY_LIMIT ? KEPT.get(this.#keyText()) : undefined;
    this.#valueLimit = limit === undefined ? 0 : limit + 1;
    this.#valueKept = 0;
    this.#value = [];
    this.#state = this.#valueLeft === 0 ? State.Newline : State.Value;
  }

  #keyText(): string {
    return Buffer.from(this.#key).toString("latin1");
  }

  #endRecord(): void {
    if (this.#valueLimit > 0) {
      const key = this.#keyText();
      const value = Buffer.concat(this.#value);
      if (key === "GNU.sparse.offset" || key === "GNU.sparse.numbytes") this.#sparse00(key, value);
      else this.#records.values.set(key, value);
    }
    this.#state = State.Start;
    this.#length = 0;
    this.#digits = 0;
    this.#used = 0;
    this.#key = [];
    this.#value = [];
    this.#valueLimit = 0;
  }

  /** GNU sparse 0.0: an offset record, then a numbytes record, for each stretch of data. */
  #sparse00(key: string, value: Buffer): void {
    const number = parseDecimal(value.toString("latin1"));
    if (number === undefined) return this.#sparseProblem(`bad ${key} value`);
    if (key === "GNU.sparse.offset") {
      if (this.#pendingOffset !== undefined) return this.#sparseProblem("offset without numbytes");
      this.#pendingOffset = number;
      return;
    }
    if (this.#pendingOffset === undefined) return this.#sparseProblem("numbytes without offset");
    if (this.#records.segments.length >= MAX_SPARSE_SEGMENTS) {
      return this.#sparseProblem(`more than ${MAX_SPARSE_SEGMENTS} entries`);
    }
    this.#records.segments.push({ offset: this.#pendingOffset, length: number });
    this.#pendingOffset = undefined;
  }

  #sparseProblem(problem: string): void {
    this.#records.sparseProblem ??= `corrupt GNU sparse map (${problem})`;
    this.#pendingOffset = undefined;
  }
}
