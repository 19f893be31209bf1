/**
 * Archive member names: the checks that keep every write inside the target directory, and the
 * folding that tells when two different names may reach the same file on disk.
 */

import { AxError } from "../errors.js";
import { printable } from "../text.js";

/** Longest accepted member path, in UTF-8 bytes (PATH_MAX on Linux). */
export const MAX_PATH_BYTES = 4096;
/** Deepest accepted member path, in components. */
export const MAX_DEPTH = 256;
/** Longest accepted path component, in UTF-8 bytes (NAME_MAX). */
export const MAX_COMPONENT_BYTES = 255;

const MAX_NAME_IN_MESSAGE = 160;

/** How a member name is shown in messages: quoted, control characters escaped, long ones cut. */
export function quoteName(name: string): string {
  const shown =
    name.length > MAX_NAME_IN_MESSAGE ? `${name.slice(0, MAX_NAME_IN_MESSAGE)}...` : name;
  return printable(JSON.stringify(shown));
}

/** The error for a member the extractor will not write: names the member and says why. */
export function refused(member: string, reason: string): AxError {
  return new AxError(`refused archive member ${quoteName(member)}: ${reason}`, {
    hint: "the archive is corrupt or malicious; nothing was written outside the target directory",
  });
}

/**
 * Splits a member name (or a hard link's target) into path components relative to the target
 * directory, dropping empty and `.` components. Returns the reason as a string when the name must
 * be refused: NUL bytes, an absolute path, a drive prefix, a `..` component, or a name past the
 * length and depth limits. An empty array is the target directory itself (`./`).
 */
export function splitMemberPath(name: string): string[] | string {
  if (name.length === 0) return "empty name";
  if (name.includes("\0")) return "name contains a NUL byte";
  if (name.startsWith("/")) return "absolute path";
  if (/^[A-Za-z]:/.test(name)) return "path starts with a drive letter";
  // Windows also splits paths at `\` and gives `:` a meaning (drives, alternate data streams).
  if (process.platform === "win32" && /[\\:]/.test(name)) return "backslash or colon in the name";
  if (Buffer.byteLength(name) > MAX_PATH_BYTES) return `path longer than ${MAX_PATH_BYTES} bytes`;
  const parts: string[] = [];
  for (const part of name.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") return 'path contains a ".." component';
    if (Buffer.byteLength(part) > MAX_COMPONENT_BYTES) {
      return `path component longer than ${MAX_COMPONENT_BYTES} bytes`;
    }
    parts.push(part);
  }
  if (parts.length > MAX_DEPTH) return `path deeper than ${MAX_DEPTH} levels`;
  return parts;
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
