/**
 * Adding or updating one `[[images]]` entry of a registry file while keeping everything else as
 * written: the other entries, the includes, comments, blank lines and key order. An existing entry
 * is edited key by key in its own text block (a trailing `# comment` on a changed line survives,
 * unless a new one is given for it); a new one is appended at the end. The result is parsed back
 * and compared with what was meant before anything is written.
 */
import { writeFileAtomic } from "../atomic-file.js";
import { AxError, UsageError, fsError } from "../errors.js";
import { FileProblemError, readRegularFile } from "../regular-file.js";
import { CANONICAL_IMAGE_KEYS, serializeImages } from "./canonical.js";
import { RegistryError } from "./errors.js";
import { parseRegistry } from "./format.js";
import { ARRAY_HEADER } from "./line-numbers.js";
import { formatSpec } from "./resolve.js";
import { MAX_REGISTRY_FILE_BYTES } from "./source.js";
import type { ImageEntry, RegistryFile } from "./types.js";

/** A part of a registry file's text, by lines (0-based, end exclusive). */
export interface TextBlock {
  /** The table the block's header opens; undefined for the text before the first header. */
  table?: "images" | "includes";
  /** Line of the header (or 0 for the text before the first header). */
  start: number;
  /** Line after the block's last line, up to the next header or the end. */
  end: number;
  /** Line after the block's last key line: comments and blank lines before the next header
   *  belong to what follows. */
  contentEnd: number;
}

const BLANK_OR_COMMENT = /^[ \t]*(?:#.*)?\r?$/;

/**
 * Splits registry text into the text before the first header and one block per `[[images]]` or
 * `[[includes]]` table header (a block ends at the next header of any kind). Lines are those of
 * `text.split("\n")`.
 */
export function registryBlocks(text: string): TextBlock[] {
  const lines = text.split("\n");
  const starts: { line: number; table?: "images" | "includes" }[] = [];
  lines.forEach((line, i) => {
    const m = ARRAY_HEADER.exec(line);
    if (m) starts.push({ line: i, table: m[1] as "images" | "includes" });
    else if (line.trimStart().startsWith("[")) starts.push({ line: i });
  });
  const blocks: TextBlock[] = [];
  const first = starts[0]?.line ?? lines.length;
  if (first > 0) blocks.push({ start: 0, end: first, contentEnd: first });
  starts.forEach((s, k) => {
    if (s.table === undefined) return;
    const end = starts[k + 1]?.line ?? lines.length;
    let contentEnd = end;
    while (contentEnd > s.line + 1 && BLANK_OR_COMMENT.test(lines[contentEnd - 1] ?? ""))
      contentEnd--;
    blocks.push({ table: s.table, start: s.line, end, contentEnd });
  });
  return blocks;
}

/**
 * The text of `block` alone, preceded by as many empty lines as come before it, so that a parser
 * reports the line numbers of the whole file.
 */
export function blockText(text: string, block: TextBlock): string {
  const lines = text.split("\n");
  return "\n".repeat(block.start) + lines.slice(block.start, block.end).join("\n");
}

/** Image keys, as written in a registry file. */
type ImageKey = (typeof CANONICAL_IMAGE_KEYS)[number];

/**
 * Trailing `# comments` to write on some lines of an entry, by key (`publish` notes on the `url`
 * line the tag an `oci://...@sha256:` URL was pushed as). One line each.
 */
export type LineComments = Partial<Record<ImageKey, string>>;

/** What {@link upsertImageText} did. */
export interface UpsertResult {
  /** The new text of the file. */
  text: string;
  /** `added`: the entry is new; `updated`: an entry with its name and version was changed;
   *  `unchanged`: it was already there as given. */
  action: "added" | "updated" | "unchanged";
}

/**
 * Adds `entry` to the registry text `text` (`source` names the file in messages), or updates the
 * entry with the same name and version in place, with `comments` at the end of their lines.
 *
 * @throws RegistryError when `text` is not a valid registry; AxError naming the file when the
 *   entry cannot be edited as text (e.g. images written as an inline array).
 */
export function upsertImageText(
  text: string,
  entry: ImageEntry,
  source: string,
  comments: LineComments = {},
): UpsertResult {
  const current = parseRegistry(text, source);
  const index = current.images.findIndex(
    (e) => e.name === entry.name && e.version === entry.version,
  );
  const expected: RegistryFile = {
    includes: current.includes,
    images:
      index < 0
        ? [...current.images, entry]
        : current.images.map((e, i) => (i === index ? entry : e)),
  };
  const same = index >= 0 && sameImage(current.images[index]!, entry);
  if (same && Object.keys(comments).length === 0) return { text, action: "unchanged" };
  const candidates =
    index < 0
      ? [appendEntry(text, entry, comments)]
      : editedEntry(text, index, current.images.length, entry, comments);
  const edited = candidates.find((t) => t !== undefined && parsesAs(t, expected, source));
  if (edited === undefined) {
    throw new AxError(
      `cannot ${index < 0 ? "add" : "update"} image ${formatSpec(entry)} in ${source}: ` +
        "its images are not written as [[images]] tables",
    );
  }
  if (edited === text) return { text, action: "unchanged" };
  return { text: edited, action: index < 0 ? "added" : "updated" };
}

/** `entry` in the canonical form, with `comments` at the end of their lines. */
function serializedEntry(entry: ImageEntry, comments: LineComments): string {
  return serializeImages([entry])
    .split("\n")
    .map((line) => {
      const eq = line.indexOf(" = ");
      const comment = eq > 0 ? comments[line.slice(0, eq) as ImageKey] : undefined;
      return comment === undefined ? line : `${line}${commentSuffix(comment)}`;
    })
    .join("\n");
}

/** `  # comment`, on one line. */
function commentSuffix(comment: string): string {
  return `  # ${comment.replace(/[\r\n]+/g, " ")}`;
}

function appendEntry(text: string, entry: ImageEntry, comments: LineComments): string {
  const body = text.replace(/\s*$/, "");
  const added = serializedEntry(entry, comments);
  return body === "" ? added : `${body}\n\n${added}`;
}

/**
 * Texts with entry `index` replaced by `entry`: first edited key by key, then (should that not
 * parse back as meant) with the entry's block re-written whole. Empty when the blocks cannot be
 * matched with the parsed entries.
 */
function editedEntry(
  text: string,
  index: number,
  count: number,
  entry: ImageEntry,
  comments: LineComments,
): string[] {
  const blocks = registryBlocks(text).filter((b) => b.table === "images");
  const block = blocks[index];
  if (blocks.length !== count || block === undefined) return [];
  const lines = text.split("\n");
  const rendered = renderedValues(entry);
  const body = lines.slice(block.start, block.contentEnd);
  for (const key of CANONICAL_IMAGE_KEYS) {
    const value = rendered.get(key);
    if (value === undefined) continue;
    const comment = comments[key];
    const at = body.findIndex((line, i) => i > 0 && keyLine(line, key) !== undefined);
    if (at < 0)
      body.push(`${key} = ${value}${comment === undefined ? "" : commentSuffix(comment)}`);
    else body[at] = replaceValue(body[at]!, key, value, comment);
  }
  const splice = (replacement: string[]) =>
    [...lines.slice(0, block.start), ...replacement, ...lines.slice(block.contentEnd)].join("\n");
  const whole = serializedEntry(entry, comments).replace(/\n$/, "").split("\n");
  return [splice(body), splice(whole)];
}

/** Each key of `entry` with its value as TOML, as the canonical writer renders them. */
function renderedValues(entry: ImageEntry): Map<string, string> {
  const values = new Map<string, string>();
  for (const line of serializeImages([entry]).split("\n")) {
    const eq = line.indexOf(" = ");
    if (eq > 0) values.set(line.slice(0, eq), line.slice(eq + 3));
  }
  return values;
}

/** `[prefix, value, suffix]` of a `key = value  # comment` line, or undefined for other lines. */
function keyLine(line: string, key: string): [string, string, string] | undefined {
  const m =
    /^([ \t]*(?:([A-Za-z0-9_-]+)|"([^"\\]*)"|'([^']*)')[ \t]*=[ \t]*)(.*?)([ \t]*(?:#[^"']*)?\r?)$/.exec(
      line,
    );
  if (!m || (m[2] ?? m[3] ?? m[4]) !== key) return undefined;
  return [m[1]!, m[5]!, m[6]!];
}

/** `line` with `value` for `key`, and `comment` in place of its own when given. */
function replaceValue(line: string, key: string, value: string, comment?: string): string {
  const [prefix, old, suffix] = keyLine(line, key)!;
  const end =
    comment === undefined
      ? suffix
      : `${commentSuffix(comment)}${suffix.endsWith("\r") ? "\r" : ""}`;
  return old === value && end === suffix ? line : `${prefix}${value}${end}`;
}

function parsesAs(text: string, expected: RegistryFile, source: string): boolean {
  try {
    const parsed = parseRegistry(text, source);
    return (
      parsed.includes.map((i) => i.url).join("\n") ===
        expected.includes.map((i) => i.url).join("\n") &&
      parsed.images.length === expected.images.length &&
      parsed.images.every((image, i) => sameImage(image, expected.images[i]!))
    );
  } catch {
    return false;
  }
}

function sameImage(a: ImageEntry, b: ImageEntry): boolean {
  return CANONICAL_IMAGE_KEYS.every((k) => a[k] === b[k]);
}

/** The fields of an image to add or update; `name` and `version` pick the entry. */
export type ImageUpdate = Pick<ImageEntry, "name" | "version"> & Partial<ImageEntry>;

/**
 * Adds or updates the image `update` names in the registry file `file` (created when missing):
 * fields not given keep their current value; a new image needs `description`, `sha256`, `arch`
 * and `url`, and gets `released_at` = now when not given; `comments` end their lines. The file is
 * replaced atomically.
 *
 * @throws UsageError naming the missing fields of a new image; RegistryError when the file or the
 *   resulting entry is invalid.
 */
export async function upsertImage(
  file: string,
  update: ImageUpdate,
  comments: LineComments = {},
): Promise<{ entry: ImageEntry; action: UpsertResult["action"] }> {
  const text = await readRegistryText(file);
  const existing = parseRegistry(text, file).images.find(
    (e) => e.name === update.name && e.version === update.version,
  );
  const merged = { ...existing, ...withoutUndefined(update) };
  if (existing === undefined)
    merged.released_at ??= new Date().toISOString().replace(/\.\d+Z$/, "Z");
  const missing = (["description", "sha256", "arch", "url"] as const).filter(
    (k) => merged[k] === undefined,
  );
  if (missing.length > 0) {
    throw new UsageError(
      `image ${formatSpec(update)} is new in ${file}: ${missing.join(", ")} required`,
    );
  }
  const entry = validEntry(merged as ImageEntry, file);
  const result = upsertImageText(text, entry, file, comments);
  if (result.action !== "unchanged") {
    try {
      await writeFileAtomic(file, result.text);
    } catch (err) {
      throw fsError(err, "write", file);
    }
  }
  return { entry, action: result.action };
}

/**
 * The text of the registry file `file` to edit: empty when it does not exist yet.
 *
 * @throws RegistryError when it is not a regular file or too large; AxError when unreadable.
 */
export async function readRegistryText(file: string): Promise<string> {
  try {
    return (await readRegularFile(file, MAX_REGISTRY_FILE_BYTES)).toString("utf8");
  } catch (err) {
    if (!(err instanceof FileProblemError)) throw fsError(err, "read", file);
    if (err.problem.kind !== "missing") throw new RegistryError(err.message, { cause: err });
    return "";
  }
}

/** `entry` as the parser reads it back (sha256 in lower case), or a UsageError naming the field. */
function validEntry(entry: ImageEntry, file: string): ImageEntry {
  try {
    return parseRegistry(serializeImages([entry]), file).images[0]!;
  } catch (err) {
    if (!(err instanceof AxError)) throw err;
    const problem = /: image "[^"]*": (.*)$/.exec(err.message)?.[1] ?? err.message;
    throw new UsageError(`invalid image ${formatSpec(entry)} for ${file}: ${problem}`);
  }
}

function withoutUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
