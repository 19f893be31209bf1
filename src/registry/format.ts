/**
 * Reading a registry file: TOML syntax (smol-toml), then the format's rules, with one-line errors
 * that name the file, the line, the image and the field at fault.
 *
 * Unknown keys (top level, in `[[images]]` or `[[includes]]`) are accepted with a warning rather
 * than refused: a newer registry may add fields, and older tools must keep working with it, while
 * the warning still shows typos. A misspelt required key is an error anyway (the key is missing).
 */

import { parse, TomlDate, TomlError } from "smol-toml";
import { CANONICAL_IMAGE_KEYS, readCanonicalImages } from "./canonical.js";
import { RegistryError } from "./errors.js";
import { LineLocator, type RegistryTable } from "./line-numbers.js";
import {
  IMAGE_URL_SCHEMES,
  nameProblem,
  parseRfc3339,
  quote,
  REGISTRY_URL_SCHEMES,
  sha256Problem,
  urlProblem,
  urlScheme,
} from "./rules.js";
import type { ImageEntry, IncludeEntry, RegistryFile } from "./types.js";

export { serializeImages } from "./canonical.js";

/** Options of {@link parseRegistry}. */
export interface ParseRegistryOptions {
  /**
   * The text is probably the store's `images.toml` as {@link serializeImages} wrote it: read it
   * with the fast reader of that form first (falling back to the TOML parser when it departs from
   * it). Values are validated all the same.
   */
  trusted?: boolean;
  /** Receives one line per unknown key (warnings name the file and line like errors). */
  onWarning?: (message: string) => void;
  /**
   * How many entries of each table come before the text in its file, when the text is a part of
   * one (`registry check` parses a broken file table by table): messages count from there.
   */
  entriesBefore?: Partial<Record<RegistryTable, number>>;
}

type Table = Record<string, unknown>;

/** Where a problem is: an entry of `table` (and its `key`), or a top-level `key`. */
interface Place {
  table?: RegistryTable;
  index?: number;
  count?: number;
  key?: string;
  /** The entry's `name` value, for the `image "name"` label. */
  name?: unknown;
}

/** Checks a string value; returns the problem (naming `key`) or undefined. */
type ValueCheck = (value: string, key: string) => string | undefined;

const IMAGE_KEYS: ReadonlySet<string> = new Set(CANONICAL_IMAGE_KEYS);
const INCLUDE_KEYS = new Set(["url"]);
const TOP_LEVEL_KEYS = new Set(["images", "includes"]);

const checkSha256: ValueCheck = (value, key) => prefixed(key, sha256Problem(value));
const checkNotEmpty: ValueCheck = (value, key) => (value === "" ? `${key} is empty` : undefined);
/** A URL absolute with one of `schemes`, or relative to the file that holds it. */
const absoluteOrRelative =
  (schemes: readonly string[]): ValueCheck =>
  (value, key) =>
    checkNotEmpty(value, key) ??
    (urlScheme(value) === undefined ? undefined : prefixed(key, urlProblem(value, schemes)));
/** An image's URL is absolute with an image scheme, or relative to the registry file. */
const checkImageUrl = absoluteOrRelative(IMAGE_URL_SCHEMES);
/** An include's URL is absolute with a registry scheme, or relative to the including file. */
const checkIncludeUrl = absoluteOrRelative(REGISTRY_URL_SCHEMES);

/**
 * Parses and validates one registry file. `source` (a URL or path) names the file in messages.
 * sha256 digests are returned in lower case; `released_at` as written when quoted, or as an ISO
 * string when written as a TOML date-time.
 *
 * @throws RegistryError on a TOML syntax error (with line and column) or a rule violation.
 */
export function parseRegistry(
  text: string,
  source: string,
  options: ParseRegistryOptions = {},
): RegistryFile {
  const document =
    (options.trusted ? readCanonicalImages(text) : undefined) ?? parseToml(text, source);
  return new RegistryValidator(text, source, options).registry(document);
}

function parseToml(text: string, source: string): Table {
  try {
    return parse(text);
  } catch (err) {
    if (!(err instanceof TomlError)) throw err;
    const reason = (err.message.split("\n")[0] ?? "").replace(/^Invalid TOML document: /, "");
    throw new RegistryError(`${source}:${err.line}:${err.column}: TOML syntax error: ${reason}`, {
      cause: err,
    });
  }
}

/** Checks a parsed document against the format's rules; reports with file and line. */
class RegistryValidator {
  private locator: LineLocator | undefined;
  private readonly text: string;
  private readonly source: string;
  private readonly onWarning: ((message: string) => void) | undefined;
  private readonly entriesBefore: Partial<Record<RegistryTable, number>>;

  constructor(text: string, source: string, options: ParseRegistryOptions) {
    this.text = text;
    this.source = source;
    this.onWarning = options.onWarning;
    this.entriesBefore = options.entriesBefore ?? {};
  }

  registry(document: Table): RegistryFile {
    this.warnUnknownKeys(document, {}, TOP_LEVEL_KEYS);
    const images = this.tables(document, "images").map((raw, index, all) =>
      this.image(raw, { table: "images", index, count: all.length, name: raw.name }),
    );
    const includes = this.tables(document, "includes").map((raw, index, all) =>
      this.include(raw, { table: "includes", index, count: all.length }),
    );
    return { includes, images };
  }

  private tables(document: Table, name: RegistryTable): Table[] {
    const value = document[name];
    if (value === undefined) return [];
    if (!Array.isArray(value)) {
      const problem = `${name} must be an array of tables ([[${name}]]), not ${typeName(value)}`;
      this.fail({ key: name }, problem);
    }
    return value.map((item: unknown, index) => {
      if (!isTable(item)) {
        this.fail(
          { table: name, index, count: value.length },
          `must be a table, not ${typeName(item)}`,
        );
      }
      return item;
    });
  }

  private image(raw: Table, place: Place): ImageEntry {
    const entry: ImageEntry = {
      name: this.string(raw, "name", place, nameProblem),
      version: this.string(raw, "version", place, nameProblem),
      description: this.string(raw, "description", place),
      sha256: this.string(raw, "sha256", place, checkSha256).toLowerCase(),
      arch: this.string(raw, "arch", place, checkNotEmpty),
      url: this.string(raw, "url", place, checkImageUrl),
    };
    if (raw.released_at !== undefined) entry.released_at = this.releasedAt(raw.released_at, place);
    this.warnUnknownKeys(raw, place, IMAGE_KEYS);
    return entry;
  }

  private include(raw: Table, place: Place): IncludeEntry {
    const url = this.string(raw, "url", place, checkIncludeUrl);
    this.warnUnknownKeys(raw, place, INCLUDE_KEYS);
    return { url };
  }

  /** A quoted RFC 3339 string as written, or a TOML offset date-time as an ISO string. */
  private releasedAt(value: unknown, place: Place): string {
    if (typeof value === "string" && parseRfc3339(value) !== undefined) return value;
    if (value instanceof TomlDate && value.isDateTime() && !value.isLocal()) {
      return value.toISOString();
    }
    const at = { ...place, key: "released_at" };
    if (typeof value !== "string" && !(value instanceof TomlDate)) {
      this.fail(at, `released_at must be a string or a date-time, not ${typeName(value)}`);
    }
    const shown = typeof value === "string" ? value : value.toISOString();
    const example = "2026-04-10T02:35:51Z";
    this.fail(at, `released_at ${quote(shown)} is not an RFC 3339 date-time (e.g. ${example})`);
  }

  /** The required string at `raw[key]`; `check` validates its value. */
  private string(raw: Table, key: string, place: Place, check?: ValueCheck): string {
    const value = raw[key];
    if (value === undefined) this.fail(place, `${key} is missing`);
    if (typeof value !== "string") {
      this.fail({ ...place, key }, `${key} must be a string, not ${typeName(value)}`);
    }
    const problem = check?.(value, key);
    if (problem !== undefined) this.fail({ ...place, key }, problem);
    return value;
  }

  private warnUnknownKeys(raw: Table, place: Place, known: ReadonlySet<string>): void {
    for (const key of Object.keys(raw)) {
      if (!known.has(key)) this.warn({ ...place, key }, `unknown key ${quote(key)} ignored`);
    }
  }

  private fail(place: Place, problem: string): never {
    throw new RegistryError(this.message(place, problem));
  }

  private warn(place: Place, problem: string): void {
    this.onWarning?.(this.message(place, problem));
  }

  private message(place: Place, problem: string): string {
    const line = this.line(place);
    const where = line === undefined ? this.source : `${this.source}:${line}`;
    const before = place.table === undefined ? 0 : (this.entriesBefore[place.table] ?? 0);
    const label = entryLabel(place, before);
    return label === undefined ? `${where}: ${problem}` : `${where}: ${label}: ${problem}`;
  }

  private line(place: Place): number | undefined {
    this.locator ??= new LineLocator(this.text);
    const { table, index, count, key } = place;
    if (table !== undefined && index !== undefined && count !== undefined) {
      return this.locator.entryLine(table, index, count, key);
    }
    return key === undefined ? undefined : this.locator.topLevelLine(key);
  }
}

/**
 * `image "name"` for an image with a usable name, else `images[3]` / `includes[0]`, counting the
 * `before` entries of the table that precede the parsed text.
 */
function entryLabel({ table, index, name }: Place, before: number): string | undefined {
  if (table === "images" && typeof name === "string" && nameProblem(name, "name") === undefined) {
    return `image ${quote(name)}`;
  }
  return table === undefined ? undefined : `${table}[${before + (index ?? 0)}]`;
}

function prefixed(key: string, problem: string | undefined): string | undefined {
  return problem === undefined ? undefined : `${key} ${problem}`;
}

function isTable(value: unknown): value is Table {
  return (
    typeof value === "object" && value !== null && !Array.isArray(value) && !(value instanceof Date)
  );
}

/** The TOML type of a parsed value, with its article, for messages. */
function typeName(value: unknown): string {
  if (typeof value === "string") return "a string";
  if (typeof value === "number") return "a number";
  if (typeof value === "boolean") return "a boolean";
  if (value instanceof Date) return "a date-time";
  if (Array.isArray(value)) return "an array";
  return "a table";
}
