/**
 * Archive member names: the checks that keep every write inside the target directory, the folding
 * that tells when two different names may reach the same file on disk, and names as bytes: a name
 * that is not valid UTF-8 keeps its exact bytes (each invalid byte is carried in the string as a
 * lone surrogate, U+DC80 to U+DCFF, and turned back into that byte for file-system calls), so two
 * members whose names differ only in invalid bytes stay two files.
 */

import { isUtf8 } from "node:buffer";
import { AxError } from "../errors.js";
import { printable } from "../text.js";

/** Longest accepted member path, in UTF-8 bytes (PATH_MAX on Linux). */
export const MAX_PATH_BYTES = 4096;
/** Deepest accepted member path, in components. */
export const MAX_DEPTH = 256;
/** Longest accepted path component, in UTF-8 bytes (NAME_MAX). */
export const MAX_COMPONENT_BYTES = 255;

const MAX_NAME_IN_MESSAGE = 160;

/** A byte of a name that is not valid UTF-8, as carried in the name's string. */
const ESCAPED_BYTE = /(?<![\uD800-\uDBFF])[\uDC80-\uDCFF]/;
const ESCAPED_BYTES = new RegExp(ESCAPED_BYTE.source, "g");

/** Length of the valid UTF-8 sequence at `bytes[i]`, 0 when the byte there starts none. */
function sequenceLength(bytes: Buffer, i: number): number {
  const lead = bytes[i] ?? 0;
  const next = (k: number, low = 0x80, high = 0xbf): boolean => {
    const byte = bytes[i + k];
    return byte !== undefined && byte >= low && byte <= high;
  };
  if (lead < 0x80) return 1;
  if (lead >= 0xc2 && lead <= 0xdf) return next(1) ? 2 : 0;
  if (lead >= 0xe0 && lead <= 0xef) {
    const second = lead === 0xe0 ? next(1, 0xa0) : lead === 0xed ? next(1, 0x80, 0x9f) : next(1);
    return second && next(2) ? 3 : 0;
  }
  if (lead >= 0xf0 && lead <= 0xf4) {
    const second = lead === 0xf0 ? next(1, 0x90) : lead === 0xf4 ? next(1, 0x80, 0x8f) : next(1);
    return second && next(2) && next(3) ? 4 : 0;
  }
  return 0;
}

/**
 * A name's bytes as a string: UTF-8, with each byte that is not part of a valid UTF-8 sequence
 * carried as the lone surrogate U+DC00 + byte (see {@link fsPath}).
 */
export function decodeName(bytes: Buffer): string {
  if (isUtf8(bytes)) return bytes.toString("utf8");
  let name = "";
  for (let i = 0; i < bytes.length;) {
    const length = sequenceLength(bytes, i);
    if (length === 0) {
      name += String.fromCharCode(0xdc00 + (bytes[i] ?? 0));
      i += 1;
    } else {
      name += bytes.toString("utf8", i, i + length);
      i += length;
    }
  }
  return name;
}

/** The path to hand to `fs`: the string itself, or its exact bytes when it carries raw bytes. */
export function fsPath(name: string): string | Buffer {
  if (!ESCAPED_BYTE.test(name)) return name;
  const parts: Buffer[] = [];
  let start = 0;
  for (const match of name.matchAll(ESCAPED_BYTES)) {
    const at = match.index ?? 0;
    parts.push(Buffer.from(name.slice(start, at)), Buffer.of(name.charCodeAt(at) - 0xdc00));
    start = at + 1;
  }
  parts.push(Buffer.from(name.slice(start)));
  return Buffer.concat(parts);
}

/** A byte carried as a lone surrogate, as `JSON.stringify` writes it (`\udce9`). */
const JSON_ESCAPED_BYTE = /(?<!\\)((?:\\\\)*)\\udc([89a-f][0-9a-f])/g;

/**
 * How a member name is shown in messages: quoted, control characters and bytes that are not UTF-8
 * escaped (`\xe9`), long ones cut.
 */
export function quoteName(name: string): string {
  const shown =
    name.length > MAX_NAME_IN_MESSAGE ? `${name.slice(0, MAX_NAME_IN_MESSAGE)}...` : name;
  return printable(JSON.stringify(shown).replace(JSON_ESCAPED_BYTE, "$1\\x$2"));
}

/** The hint of a refused member: what went wrong, and that nothing escaped. */
const CORRUPT_HINT =
  "the archive is corrupt or malicious; nothing was written outside the target directory";

/** The error for a member the extractor will not write: names the member and says why. */
export function refused(member: string, reason: string, hint = CORRUPT_HINT): AxError {
  return new AxError(`refused archive member ${quoteName(member)}: ${reason}`, { hint });
}

/** The reason given for an absolute member name. */
export const ABSOLUTE_PATH =
  'absolute path (GNU tar would strip the leading "/"; member names are never rewritten here)';

/** The hint given for an absolute member name. */
export const ABSOLUTE_PATH_HINT =
  "the archive was made with absolute member names (tar -P): ask for one made with relative " +
  "names (tar -C DIR -cf ARCHIVE .); nothing was written outside the target directory";

/**
 * Splits a member name (or a hard link's target) into path components relative to the target
 * directory, dropping empty and `.` components. Returns the reason as a string when the name must
 * be refused: NUL bytes, an absolute path ({@link ABSOLUTE_PATH}), a drive prefix, a `..`
 * component, or a name past the length and depth limits. An empty array is the target directory
 * itself (`./`, or an empty name, which GNU tar reads as `.`).
 */
export function splitMemberPath(name: string): string[] | string {
  if (name.includes("\0")) return "name contains a NUL byte";
  if (name.startsWith("/")) return ABSOLUTE_PATH;
  if (/^[A-Za-z]:/.test(name)) return "path starts with a drive letter";
  // Windows also splits paths at `\` and gives `:` a meaning (drives, alternate data streams).
  if (process.platform === "win32" && /[\\:]/.test(name)) return "backslash or colon in the name";
  if (byteLength(name) > MAX_PATH_BYTES) return `path longer than ${MAX_PATH_BYTES} bytes`;
  const parts: string[] = [];
  for (const part of name.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") return 'path contains a ".." component';
    if (byteLength(part) > MAX_COMPONENT_BYTES) {
      return `path component longer than ${MAX_COMPONENT_BYTES} bytes`;
    }
    parts.push(part);
  }
  if (parts.length > MAX_DEPTH) return `path deeper than ${MAX_DEPTH} levels`;
  return parts;
}

/** Length in bytes of a name as it reaches the file system. */
export function byteLength(name: string): number {
  const path = fsPath(name);
  return typeof path === "string" ? Buffer.byteLength(path) : path.length;
}

const IGNORABLE = /\p{Default_Ignorable_Code_Point}/gu;
const PRINTABLE_ASCII = /^[ -~]*$/;

/**
 * The form under which case-insensitive or normalization-insensitive file systems (APFS, HFS+,
 * ext4 casefold, NTFS) may treat two names as one: compatibility decomposition (NFKD: `ﬁ` = `fi`,
 * Kelvin sign = `K`), without default-ignorable code points (HFS+ skips zero-width joiners), then
 * full case folding by lower-, upper- and lower-casing again (`ẞ` -> `ß` -> `SS` -> `ss`).
 */
export function foldName(component: string): string {
  if (PRINTABLE_ASCII.test(component)) return component.toLowerCase(); // the usual case, exactly
  return component
    .normalize("NFKD")
    .replace(IGNORABLE, "")
    .toLowerCase()
    .toUpperCase()
    .toLowerCase()
    .normalize("NFKD");
}
