/**
 * One 512-byte tar header block, decoded as GNU tar decodes it: the checksum (unsigned, or the
 * signed sum old Sun and NeXT tars wrote), numeric fields in octal or base-256, names as raw bytes,
 * and the formats told apart by their magic: POSIX ustar (`ustar\0`, whose prefix field opens the
 * name), GNU (`ustar  \0`, whose prefix area holds other fields and old GNU sparse maps) and
 * pre-POSIX v7 (no magic). Headers only: member data never passes through here.
 */

import type { SparseSegment } from "./sparse.js";

/** Size of a tar block. */
export const BLOCK = 512;

const NAME = 0;
const NAME_LENGTH = 100;
const MODE = 100;
const SIZE = 124;
const MTIME = 136;
const CHECKSUM = 148;
const TYPEFLAG = 156;
const LINKNAME = 157;
const MAGIC = 257;
const PREFIX = 345;
const PREFIX_LENGTH = 155;
/** Old GNU sparse fields: 4 map slots, the "more slots follow" flag, the file's real size. */
const OLDGNU_SLOTS = 386;
const OLDGNU_SLOT_COUNT = 4;
const OLDGNU_EXTENDED = 482;
const OLDGNU_REALSIZE = 483;
/** A sparse extension block: 21 slots, then the flag. */
const EXTENSION_SLOT_COUNT = 21;
const EXTENSION_EXTENDED = 504;
const SLOT = 24;

const USTAR_MAGIC = Buffer.from("ustar\0", "latin1");

/** A numeric field's value, or why it is not one. */
export type Numeric = number | "negative" | "unparsable";

/** What one header block says. */
export interface HeaderBlock {
  /** The name field as bytes (with a ustar prefix joined by `/`). */
  name: Buffer;
  /** The link name field as bytes. */
  linkname: Buffer;
  /** The typeflag byte. */
  typeflag: number;
  /** Permission bits (and setuid/setgid/sticky), 0 when unreadable. */
  mode: number;
  /** Modification time in seconds, 0 when unreadable. */
  mtime: number;
  /** The size field. */
  size: Numeric;
}

/** The map slots of an old GNU sparse header or extension block. */
export interface SparseSlots {
  /** The slots in use, in order. */
  segments: SparseSegment[];
  /** True when a slot was empty: the map ended in this block. */
  ended: boolean;
  /** True when an extension block follows. */
  extended: boolean;
}

const ZERO_BLOCK = Buffer.alloc(BLOCK);

/** True when `block` (at most a block long) is all zero bytes, as an end-of-archive block is. */
export function isZeroBlock(block: Buffer): boolean {
  return block.equals(ZERO_BLOCK.subarray(0, block.length));
}

/**
 * Reads the numeric field `block[start, start + length)`: octal digits after optional spaces (and
 * one leading NUL), ended by a space, a NUL or the field's end; or base-256 (first byte 0x80, or
 * 0xff for a negative number). An empty field reads as 0, as in GNU tar.
 */
function readNumber(block: Buffer, start: number, length: number): Numeric {
  const end = start + length;
  let i = start;
  const first = block[i] ?? 0;
  if (first === 0x80) {
    let value = 0;
    for (i++; i < end; i++) {
      value = value * 256 + (block[i] ?? 0);
      if (value > Number.MAX_SAFE_INTEGER) return "unparsable";
    }
    return value;
  }
  if (first === 0xff) return "negative";
  if (first === 0) i++;
  while (i < end && block[i] === 0x20) i++;
  if (i === end) return "unparsable"; // only blanks
  let value = 0;
  for (; i < end; i++) {
    const byte = block[i] ?? 0;
    if (byte < 0x30 || byte > 0x37) break;
    value = value * 8 + byte - 0x30;
  }
  if (i < end && block[i] !== 0 && block[i] !== 0x20) return "unparsable";
  return value;
}

/** The bytes of `block[start, start + length)` up to the first NUL. */
function field(block: Buffer, start: number, length: number): Buffer {
  const end = block.indexOf(0, start);
  return block.subarray(start, end === -1 || end > start + length ? start + length : end);
}

/** True when the stored checksum matches the block's unsigned or signed byte sum. */
function checksumMatches(block: Buffer): boolean {
  const recorded = readNumber(block, CHECKSUM, 8);
  if (typeof recorded !== "number") return false;
  let unsigned = 8 * 0x20;
  for (let i = 0; i < BLOCK; i++) unsigned += block[i] as number;
  for (let i = CHECKSUM; i < CHECKSUM + 8; i++) unsigned -= block[i] as number;
  if (recorded === unsigned) return true;
  let high = 0; // old Sun and NeXT tars summed signed bytes
  for (let i = 0; i < BLOCK; i++) if ((block[i] as number) >= 0x80) high++;
  for (let i = CHECKSUM; i < CHECKSUM + 8; i++) if ((block[i] as number) >= 0x80) high--;
  return recorded === unsigned - 256 * high;
}

/** True when `magic` is at the magic field of `block`. */
function hasMagic(block: Buffer, magic: Buffer): boolean {
  for (let i = 0; i < magic.length; i++) if (block[MAGIC + i] !== magic[i]) return false;
  return true;
}

/** Decodes a header block; `undefined` when its checksum is wrong (not a header). */
export function decodeHeader(block: Buffer): HeaderBlock | undefined {
  if (!checksumMatches(block)) return undefined;
  let name = field(block, NAME, NAME_LENGTH);
  if (block[PREFIX] !== 0 && hasMagic(block, USTAR_MAGIC)) {
    name = Buffer.concat([field(block, PREFIX, PREFIX_LENGTH), Buffer.from("/"), name]);
  }
  const mode = readNumber(block, MODE, 8);
  const mtime = readNumber(block, MTIME, 12);
  return {
    name,
    linkname: field(block, LINKNAME, NAME_LENGTH),
    typeflag: block[TYPEFLAG] ?? 0,
    mode: typeof mode === "number" ? mode & 0o7777 : 0,
    mtime: typeof mtime === "number" ? mtime : 0,
    size: readNumber(block, SIZE, 12),
  };
}

/** Reads `count` map slots from `start`; `undefined` when a slot holds no number. */
function readSlots(
  block: Buffer,
  start: number,
  count: number,
  extendedAt: number,
): SparseSlots | undefined {
  const segments: SparseSegment[] = [];
  let ended = false;
  for (let slot = start; slot < start + count * SLOT; slot += SLOT) {
    if (block[slot + 12] === 0) {
      ended = true; // an empty slot ends the map, as GNU tar reads it
      continue;
    }
    if (ended) return undefined; // a slot in use after the end: readers disagree
    const offset = readNumber(block, slot, 12);
    const length = readNumber(block, slot + 12, 12);
    if (typeof offset !== "number" || typeof length !== "number") return undefined;
    segments.push({ offset, length });
  }
  return { segments, ended, extended: block[extendedAt] !== 0 };
}

/** The old GNU sparse fields of a type `S` header: its first map slots and the real size. */
export function oldGnuSparse(block: Buffer): { slots: SparseSlots; realSize: number } | undefined {
  const slots = readSlots(block, OLDGNU_SLOTS, OLDGNU_SLOT_COUNT, OLDGNU_EXTENDED);
  const realSize = readNumber(block, OLDGNU_REALSIZE, 12);
  if (slots === undefined || typeof realSize !== "number") return undefined;
  return { slots, realSize };
}

/** The map slots of an old GNU sparse extension block. */
export function sparseExtension(block: Buffer): SparseSlots | undefined {
  return readSlots(block, 0, EXTENSION_SLOT_COUNT, EXTENSION_EXTENDED);
}
