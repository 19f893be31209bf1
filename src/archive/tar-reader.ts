/**
 * The streaming tar reader: (decompressed) archive bytes in, one member at a time out, as GNU tar
 * reads them. It parses headers only: member data is handed out as views into the input chunks,
 * never copied or scanned here.
 *
 * Formats: POSIX ustar and pax (local `x`/`X` and global `g` headers), GNU and old GNU (long names
 * `L`, long link targets `K`, old sparse members `S` with their extension blocks; volume labels
 * `V` are skipped), and pre-POSIX v7 headers; sizes in octal or base-256; GNU sparse maps of
 * formats 0.0, 0.1 and 1.0. The archive ends at its first zero block, as in GNU tar: what follows
 * a lone zero block is ignored (with a warning).
 *
 * Hostile input: every header is checksummed, every size checked (a member's data is read as its
 * size says, and members whose data GNU tar would not read, directories and hard links, must have
 * none, so that no data can pass for headers in one reader and not in another), and what is kept
 * in memory is bounded: pax records of the keys used, long names, sparse maps (see pax.ts,
 * sparse.ts). */

import { AxError } from "../errors.js";
import { MAX_PATH_BYTES, decodeName, quoteName, refused } from "./member-path.js";
import { PaxParser, type PaxRecords } from "./pax.js";
import {
  MAX_SPARSE_SEGMENTS,
  SparseMapReader,
  paxSparse,
  parseDecimal,
  sparseFileSize,
  type SparseSegment,
} from "./sparse.js";
import {
  BLOCK,
  decodeHeader,
  isZeroBlock,
  oldGnuSparse,
  sparseExtension,
  type HeaderBlock,
  type Numeric,
} from "./tar-header.js";

/** What a member is. */
export type MemberType =
  "file" | "directory" | "symlink" | "link" | "character-device" | "block-device" | "fifo";

/** A member of the archive; its data is read with {@link TarReader.read} and friends. */
export interface TarMember {
  /** Its name (bytes that are not UTF-8 carried as described in member-path.ts). */
  name: string;
  /** Link target (symbolic and hard links), same encoding. */
  linkname: string;
  type: MemberType;
  /** Permission bits from the header. */
  mode: number;
  /** Modification time in seconds. */
  mtime: number;
  /** Bytes of data the archive holds for it, still to be read (after a 1.0 sparse map). */
  size: number;
  /** For a sparse file: its map, in archive order, and the file's final length. */
  sparse?: { segments: SparseSegment[]; size: number };
}

/** Options of a {@link TarReader}. */
export interface TarReaderOptions {
  /** Told when a lone zero block ends the archive before its data does. */
  onWarning?: (message: string) => void;
}

const TYPES = new Map<number, MemberType>([
  [0x00, "file"], // v7
  [0x30, "file"], // '0'
  [0x37, "file"], // '7', contiguous
  [0x31, "link"],
  [0x32, "symlink"],
  [0x33, "character-device"],
  [0x34, "block-device"],
  [0x35, "directory"],
  [0x36, "fifo"],
]);
const SPARSE = 0x53; // 'S'
const PAX = 0x78; // 'x'
const PAX_SOLARIS = 0x58; // 'X'
const PAX_GLOBAL = 0x67; // 'g'
const LONG_NAME = 0x4c; // 'L'
const LONG_LINK = 0x4b; // 'K'
const VOLUME_LABEL = 0x56; // 'V'
const UNSUPPORTED = new Map<number, string>([
  [0x4d, "multi-volume continuation"], // 'M'
  [0x44, "GNU incremental directory"], // 'D'
  [0x4e, "old GNU long names"], // 'N'
]);
/**
 * Largest pax header or long name accepted, in bytes. Only the records of the keys used are kept
 * (see pax.ts); the limit bounds the time spent on one header's records.
 */
const MAX_EXTENDED_HEADER = 64 * 1024 * 1024;

/** Global pax keys applied to the members that follow; the others are ignored. */
const GLOBAL_KEYS = ["path", "linkpath", "mtime"];

const EMPTY = Buffer.alloc(0);

function padding(size: number): number {
  return (BLOCK - (size % BLOCK)) % BLOCK;
}

/** A pax size record: a decimal number, or why it is not one. */
function paxNumber(value: Buffer): Numeric {
  const text = value.toString("latin1");
  if (/^-\d+$/.test(text)) return "negative";
  return parseDecimal(text) ?? "unparsable";
}

function sizeProblem(size: Numeric): string {
  return size === "negative" ? "negative size" : "unparsable size field";
}

/**
 * Reads a tar stream from `source`: call {@link TarReader.next} for each member, read its data (or
 * not: the next call skips what is left), and once `next()` resolves with `undefined`, call
 * {@link TarReader.drain} to consume what follows the end of the archive.
 */
export class TarReader {
  readonly #source: AsyncIterator<Buffer>;
  readonly #onWarning: (message: string) => void;
  #chunk: Buffer = EMPTY;
  #pos = 0;
  /** Archive offset of `#chunk[0]`. */
  #chunkStart = 0;
  /** Data bytes of the current member not read yet, and the padding after them. */
  #left = 0;
  #padding = 0;
  #ended = false;
  #headers = 0;
  #last: string | undefined;
  #global = new Map<string, Buffer>();

  /** Reads from `source`, a stream of (decompressed) archive bytes. */
  constructor(source: AsyncIterable<Buffer>, options: TarReaderOptions = {}) {
    this.#source = source[Symbol.asyncIterator]();
    this.#onWarning = options.onWarning ?? (() => {});
  }

  /** The next member (skipping what is left of the current one), or `undefined` at the end. */
  async next(): Promise<TarMember | undefined> {
    if (this.#left + this.#padding > 0) await this.#skip(this.#left + this.#padding);
    this.#left = 0;
    this.#padding = 0;
    let local: PaxRecords | undefined;
    let longName: Buffer | undefined;
    let longLink: Buffer | undefined;
    let extended = false;
    while (!this.#ended) {
      const at = this.#position;
      const block =
        this.#chunk.length - this.#pos >= BLOCK
          ? this.#view(BLOCK)
          : await this.#exact(BLOCK, extended);
      if (block === undefined || isZeroBlock(block)) {
        if (block) await this.#endOfArchive(at);
        this.#ended = true;
        break;
      }
      const header = decodeHeader(block);
      if (header === undefined) throw this.#corrupt("bad header checksum or format");
      this.#headers++;
      switch (header.typeflag) {
        case PAX:
        case PAX_SOLARIS:
          local = await this.#pax(header); // a second one replaces the first, as in GNU tar
          extended = true;
          continue;
        case PAX_GLOBAL:
          this.#global = await this.#paxGlobal(header);
          continue;
        case LONG_NAME:
          longName = await this.#longName(header);
          extended = true;
          continue;
        case LONG_LINK:
          longLink = await this.#longName(header);
          extended = true;
          continue;
        case VOLUME_LABEL: // `tar -V`: names the archive, not a file; GNU tar skips it too
          await this.#pseudoData(header, () => {});
          continue;
      }
      return this.#member(block, header, local, longName, longLink);
    }
    return undefined;
  }

  /** The next piece of the current member's data, at most `max` bytes (at least one byte). */
  async read(max = Number.POSITIVE_INFINITY): Promise<Buffer> {
    if (this.#left === 0 || max < 1) throw new Error("read past the end of a member's data");
    const piece = await this.#take(Math.min(max, this.#left));
    if (piece === undefined) throw this.#truncated();
    this.#left -= piece.length;
    return piece;
  }

  /** The rest of the current member's data, in one buffer (for small members). */
  async readAll(): Promise<Buffer> {
    const pieces: Buffer[] = [];
    while (this.#left > 0) pieces.push(await this.read());
    return pieces.length === 1 ? (pieces[0] as Buffer) : Buffer.concat(pieces);
  }

  /** Skips `n` bytes of the current member's data. */
  async skipData(n: number): Promise<void> {
    await this.#skip(Math.min(n, this.#left));
    this.#left -= Math.min(n, this.#left);
  }

  /** Consumes the input after the end of the archive (so that its decoder can finish). */
  async drain(): Promise<void> {
    this.#pos = this.#chunk.length;
    while (!(await this.#source.next()).done);
  }

  get #position(): number {
    return this.#chunkStart + this.#pos;
  }

  /** Makes input available at `#pos`; false at its end. */
  async #fill(): Promise<boolean> {
    while (this.#pos >= this.#chunk.length) {
      const next = await this.#source.next();
      if (next.done) return false;
      this.#chunkStart += this.#chunk.length;
      this.#chunk = next.value;
      this.#pos = 0;
    }
    return true;
  }

  /** Up to `max` bytes of input (a view into it), or `undefined` at its end. */
  async #take(max: number): Promise<Buffer | undefined> {
    if (this.#pos >= this.#chunk.length && !(await this.#fill())) return undefined;
    const end = Math.min(this.#chunk.length, this.#pos + max);
    const piece = this.#chunk.subarray(this.#pos, end);
    this.#pos = end;
    return piece;
  }

  /** The next `n` bytes of the current chunk, which holds them. */
  #view(n: number): Buffer {
    this.#pos += n;
    return this.#chunk.subarray(this.#pos - n, this.#pos);
  }

  /**
   * Exactly `n` bytes; `undefined` when the input ends before the first of them (unless
   * `required`), a truncation error when it ends among them.
   */
  async #exact(n: number, required = true): Promise<Buffer | undefined> {
    if (this.#chunk.length - this.#pos >= n) return this.#view(n);
    const pieces: Buffer[] = [];
    for (let got = 0; got < n;) {
      const piece = await this.#take(n - got);
      if (piece === undefined) {
        if (got === 0 && !required) return undefined;
        throw this.#truncated();
      }
      pieces.push(piece);
      got += piece.length;
    }
    return Buffer.concat(pieces);
  }

  async #skip(n: number): Promise<void> {
    for (let left = n; left > 0;) {
      const piece = await this.#take(left);
      if (piece === undefined) throw this.#truncated();
      left -= piece.length;
    }
  }

  /** A zero block at `at`: the end. Warns when what follows is not the second zero block. */
  async #endOfArchive(at: number): Promise<void> {
    for (let seen = 0; seen < BLOCK;) {
      const piece = await this.#take(BLOCK - seen);
      if (piece === undefined) return;
      if (!isZeroBlock(piece)) {
        this.#onWarning(
          `a lone zero block at byte ${at} ends the archive, as GNU tar reads it: the data after ` +
            "it was ignored",
        );
        return;
      }
      seen += piece.length;
    }
  }

  /** Passes the data of a pseudo-member (pax header, long name) to `consume`, then its padding. */
  async #pseudoData(header: HeaderBlock, consume: (piece: Buffer) => void): Promise<void> {
    if (typeof header.size !== "number") {
      throw this.#corrupt(`extended header: ${sizeProblem(header.size)}`);
    }
    if (header.size > MAX_EXTENDED_HEADER) {
      throw this.#corrupt(`extended header of ${header.size} bytes (the limit is 64 MiB)`);
    }
    for (let left = header.size; left > 0;) {
      const piece = await this.#take(left);
      if (piece === undefined) throw this.#truncated();
      consume(piece);
      left -= piece.length;
    }
    await this.#skip(padding(header.size));
  }

  async #pax(header: HeaderBlock): Promise<PaxRecords> {
    const parser = new PaxParser();
    await this.#pseudoData(header, (piece) => parser.push(piece));
    const records = parser.finish();
    if (typeof records === "string") throw this.#corrupt(records);
    return records;
  }

  async #paxGlobal(header: HeaderBlock): Promise<Map<string, Buffer>> {
    const records = await this.#pax(header);
    const keys = [...records.values.keys()];
    const risky = keys.find((key) => key === "size" || key.startsWith("GNU.sparse."));
    if (risky !== undefined || records.segments.length > 0 || records.sparseProblem) {
      throw this.#corrupt(
        `a pax global header sets "${risky ?? "GNU.sparse.offset"}" for every member ` +
          "(tar readers disagree on it)",
      );
    }
    // Each global header replaces the previous one, as in GNU tar.
    return new Map(
      keys
        .filter((key) => GLOBAL_KEYS.includes(key))
        .map((k) => [k, records.values.get(k) as Buffer]),
    );
  }

  /** The data of a long name or link header, up to its first NUL (kept up to a limit). */
  async #longName(header: HeaderBlock): Promise<Buffer> {
    const pieces: Buffer[] = [];
    let kept = 0;
    await this.#pseudoData(header, (piece) => {
      const keep = Math.min(piece.length, MAX_PATH_BYTES + 1 - kept);
      if (keep > 0) pieces.push(piece.subarray(0, keep));
      kept += keep;
    });
    const name = Buffer.concat(pieces);
    const end = name.indexOf(0);
    return end === -1 ? name : name.subarray(0, end);
  }

  async #member(
    block: Buffer,
    header: HeaderBlock,
    local: PaxRecords | undefined,
    longName: Buffer | undefined,
    longLink: Buffer | undefined,
  ): Promise<TarMember> {
    const value = (key: string): Buffer | undefined =>
      local?.values.get(key) ?? this.#global.get(key);
    let name = decodeName(value("path") ?? longName ?? header.name);
    const linkname = decodeName(value("linkpath") ?? longLink ?? header.linkname);
    this.#last = name;
    const paxSize = local?.values.get("size");
    const size = paxSize === undefined ? header.size : paxNumber(paxSize);
    if (typeof size !== "number") throw refused(name, sizeProblem(size));
    const paxMtime = Number(value("mtime")?.toString("latin1") ?? Number.NaN);
    const mtime = Number.isFinite(paxMtime) ? paxMtime : header.mtime;
    this.#left = size;
    this.#padding = padding(size);

    let type: MemberType;
    let sparse: TarMember["sparse"];
    let dataSize = size;
    if (header.typeflag === SPARSE) {
      if (local && paxSparse(local) !== undefined) {
        throw refused(name, "old GNU sparse member with pax sparse records");
      }
      type = "file";
      sparse = await this.#oldGnuSparse(name, block, size);
    } else {
      const known = TYPES.get(header.typeflag);
      if (known === undefined) throw refused(name, this.#unsupported(header.typeflag));
      // A "file" whose name ends in "/" is a directory (old tars), in GNU tar as here.
      type = known === "file" && name.endsWith("/") ? "directory" : known;
      const layout = paxSparse(local);
      if (typeof layout === "string") throw refused(name, layout);
      if (layout !== undefined) {
        if (type !== "file") throw refused(name, `GNU sparse records on a ${type} member`);
        if (layout.name !== undefined) name = decodeName(layout.name);
        this.#last = name;
        let segments = layout.segments;
        if (segments === undefined) {
          segments = await this.#sparseMap10(name);
          dataSize = this.#left;
        }
        sparse = { segments, size: this.#sparseSize(name, segments, layout.realSize, dataSize) };
      }
    }
    // Other tools differ on whether these carry data (GNU tar reads none for either): the data
    // could pass for headers in one and not in another, so such members are refused.
    if (size > 0 && type === "directory") throw refused(name, "directory member with data");
    if (size > 0 && type === "link") throw refused(name, "hard link member with data");
    return { name, linkname, type, mode: header.mode, mtime, size: this.#left, sparse };
  }

  #unsupported(typeflag: number): string {
    const shown = quoteName(String.fromCharCode(typeflag));
    const what = UNSUPPORTED.get(typeflag);
    return `unsupported member type ${shown}${what ? ` (${what})` : ""}`;
  }

  /** Reads the map of an old GNU sparse member: the header's slots, then extension blocks. */
  async #oldGnuSparse(name: string, block: Buffer, size: number): Promise<TarMember["sparse"]> {
    const fields = oldGnuSparse(block);
    if (fields === undefined) throw refused(name, "corrupt old GNU sparse header");
    let slots = fields.slots;
    const segments = [...slots.segments];
    while (slots.extended) {
      if (slots.ended)
        throw refused(name, "corrupt old GNU sparse map (ends before its extension)");
      const extension = sparseExtension((await this.#exact(BLOCK)) as Buffer);
      if (extension === undefined) throw refused(name, "corrupt old GNU sparse extension block");
      slots = extension;
      segments.push(...slots.segments);
      if (segments.length > MAX_SPARSE_SEGMENTS) {
        throw refused(name, `GNU sparse map of more than ${MAX_SPARSE_SEGMENTS} entries`);
      }
    }
    return { segments, size: this.#sparseSize(name, segments, fields.realSize, size) };
  }

  /** Reads the map that opens the data of a pax 1.0 sparse member. */
  async #sparseMap10(name: string): Promise<SparseSegment[]> {
    const reader = new SparseMapReader();
    for (;;) {
      if (this.#left < BLOCK) throw refused(name, "GNU sparse map longer than the member");
      const done = reader.push((await this.#exact(BLOCK)) as Buffer);
      this.#left -= BLOCK;
      if (typeof done === "string") throw refused(name, done);
      if (done) return reader.segments;
    }
  }

  #sparseSize(name: string, segments: SparseSegment[], realSize: number, dataSize: number): number {
    const size = sparseFileSize(segments, realSize, dataSize);
    if (typeof size === "string") throw refused(name, size);
    return size;
  }

  #truncated(): AxError {
    const where =
      this.#last === undefined ? "at its start" : `in or after member ${quoteName(this.#last)}`;
    return new AxError(`the archive is truncated (${where})`);
  }

  #corrupt(detail: string): AxError {
    if (this.#headers === 0) {
      return new AxError(
        "not a tar archive: the (decompressed) data does not start with a tar header",
      );
    }
    const where =
      this.#last === undefined ? "at its start" : `after member ${quoteName(this.#last)}`;
    return new AxError(`corrupt tar archive ${where}: ${detail}`);
  }
}
