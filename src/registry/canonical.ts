/**
 * The store's `images.toml`: the canonical form this tool writes ({@link serializeImages}) and a
 * fast reader for exactly that form ({@link readCanonicalImages}), which `ls` uses on large stores
 * instead of the general TOML parser.
 */

import type { ImageEntry } from "./types.js";

/** Keys of an `[[images]]` entry in the order the Rust tool writes them. */
export const CANONICAL_IMAGE_KEYS = [
  "name",
  "version",
  "released_at",
  "description",
  "sha256",
  "arch",
  "url",
] as const satisfies readonly (keyof ImageEntry)[];

const LONE_SURROGATE = /\p{Cs}/u;
const LONE_SURROGATES = /\p{Cs}/gu;

/**
 * The store's `images.toml` for `images`: `[[images]]` tables only, sorted by (name, version) in
 * code-unit order, keys in the order of {@link CANONICAL_IMAGE_KEYS}, all values basic strings.
 * An empty list is written as `images = []`.
 */
export function serializeImages(images: readonly ImageEntry[]): string {
  if (images.length === 0) return "images = []\n";
  const sorted = [...images].sort(compareNameVersion);
  const parts: string[] = [];
  for (const image of sorted) {
    parts.push("[[images]]\n");
    for (const key of CANONICAL_IMAGE_KEYS) {
      const value = image[key];
      if (value !== undefined) parts.push(`${key} = ${tomlString(value)}\n`);
    }
    parts.push("\n");
  }
  return parts.join("").slice(0, -1);
}

function compareNameVersion(a: ImageEntry, b: ImageEntry): number {
  if (a.name !== b.name) return a.name < b.name ? -1 : 1;
  if (a.version !== b.version) return a.version < b.version ? -1 : 1;
  return 0;
}

/**
 * `value` as a TOML basic string. JSON's escapes are a subset of TOML's; DEL must be escaped in
 * TOML too, and a lone surrogate (not representable in UTF-8) becomes U+FFFD.
 */
function tomlString(value: string): string {
  const wellFormed = LONE_SURROGATE.test(value) ? value.replace(LONE_SURROGATES, "\uFFFD") : value;
  return JSON.stringify(wellFormed).replaceAll("\x7f", "\\u007f");
}

/**
 * One token of the canonical form, matched where the previous one ended: a `key = "value"` line
 * (value: no control characters, only JSON-compatible escapes, no surrogate escapes), an
 * `[[images]]` header, or an empty line.
 */
const CANONICAL_TOKEN =
  // eslint-disable-next-line no-control-regex -- TOML basic strings hold no raw control characters
  /([A-Za-z0-9_-]+) = "((?:[^"\\\x00-\x1f\x7f]|\\[btnfr"\\]|\\u(?![dD][89a-fA-F])[0-9a-fA-F]{4})*)"\n|(\[\[images\]\]\n)|\n/y;

/**
 * The `{ images: [...] }` document of a text in the canonical form, or `undefined` as soon as the
 * text departs from it (comments, other tables, other value types, duplicate keys): the caller
 * then uses the general parser. Values are not validated here.
 */
export function readCanonicalImages(
  text: string,
): { images: Record<string, unknown>[] } | undefined {
  const images: Record<string, unknown>[] = [];
  let entry: Record<string, unknown> | undefined;
  CANONICAL_TOKEN.lastIndex = 0;
  while (CANONICAL_TOKEN.lastIndex < text.length) {
    const m = CANONICAL_TOKEN.exec(text);
    if (!m) return undefined;
    const [, key, raw, header] = m;
    if (header !== undefined) {
      entry = Object.create(null) as Record<string, unknown>;
      images.push(entry);
    } else if (key !== undefined && raw !== undefined) {
      if (entry === undefined || key in entry) return undefined;
      entry[key] = raw.includes("\\") ? JSON.parse(`"${raw}"`) : raw;
    }
  }
  return images.length > 0 ? { images } : undefined;
}
