/**
 * The lock file, `axvisor-image.lock`: the exact images a project uses (name, version, sha256,
 * arch, url, and the registry each came from), in TOML, beside the nearest `.image.toml`. It
 * carries everything a pull needs, so `pull --locked` reads no registry at all.
 */
import { dirname, join, resolve } from "node:path";
import { writeFileAtomic } from "../atomic-file.js";
import { AxError, fsError } from "../errors.js";
import { FileProblemError, readRegularFile } from "../regular-file.js";
import { compareVersions, formatSpec } from "./resolve.js";
import { isRemote } from "./location.js";
import {
  IMAGE_URL_SCHEMES,
  nameProblem,
  quote,
  sha256Problem,
  urlProblem,
  urlScheme,
} from "./rules.js";
import type { ImageEntry } from "./types.js";

/** The lock file's name. */
export const LOCK_FILE_NAME = "axvisor-image.lock";

/** Version of the lock file's format (its top-level `version`). */
const LOCK_FORMAT = 1;

/** Largest lock file read: 16 MiB (an entry takes about 300 bytes). */
const MAX_LOCK_FILE_BYTES = 16 * 1024 * 1024;

/** One `[[images]]` entry of a lock file. */
export interface LockEntry {
  name: string;
  version: string;
  /** sha256 of the archive, 64 lower-case hex digits. */
  sha256: string;
  arch: string;
  /** Where the archive is downloaded from. */
  url: string;
  /** The registry (URL or path) the entry was resolved in, as a plain string. */
  registry: string;
}

const ENTRY_KEYS = ["name", "version", "sha256", "arch", "url", "registry"] as const;

/**
 * Where the lock file is: `explicit` (`--lock FILE`) when given, else beside the `.image.toml`
 * that was read, else in `cwd`.
 */
export function lockFilePath(
  explicit: string | undefined,
  configFile: string | undefined,
  cwd = process.cwd(),
): string {
  if (explicit !== undefined) return resolve(cwd, explicit);
  return join(configFile === undefined ? cwd : dirname(configFile), LOCK_FILE_NAME);
}

/** `NAME:VERSION` of a locked entry. */
export function lockedSpec(entry: LockEntry): string {
  return formatSpec(entry);
}

/** A locked entry as a registry entry, for resolving and pulling. */
export function lockedImage(entry: LockEntry): ImageEntry {
  const { name, version, sha256, arch, url } = entry;
  return { name, version, sha256, arch, url, description: "" };
}

/**
 * Reads the lock file at `path`: its entries, or undefined when there is none.
 *
 * @throws AxError naming the file (and entry) when it cannot be read or breaks the format.
 */
export async function readLockFile(path: string): Promise<LockEntry[] | undefined> {
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(
      await readRegularFile(path, MAX_LOCK_FILE_BYTES),
    );
  } catch (err) {
    if (err instanceof FileProblemError) {
      if (err.problem.kind === "missing") return undefined;
      throw new AxError(`lock file ${err.message}`, { cause: err });
    }
    if (err instanceof TypeError) throw new AxError(`lock file ${path} is not UTF-8 text`);
    throw fsError(err, "read", path);
  }
  return parseLockFile(text, path);
}

/**
 * Parses the text of a lock file; `source` names it in messages.
 *
 * @throws AxError naming the file and the entry at fault.
 */
export async function parseLockFile(text: string, source: string): Promise<LockEntry[]> {
  const { parse, TomlError } = await import("smol-toml");
  let doc: Record<string, unknown>;
  try {
    doc = parse(text);
  } catch (err) {
    if (!(err instanceof TomlError)) throw err;
    throw new AxError(`${source}:${err.line}:${err.column}: ${err.message.split("\n")[0]}`);
  }
  const bad = (what: string): never => {
    throw new AxError(`lock file ${source}: ${what}`, {
      hint: "write it again with `axvisor-image lock NAME...`",
    });
  };
  for (const key of Object.keys(doc)) {
    if (key !== "version" && key !== "images") bad(`unknown key ${quote(key)}`);
  }
  if (doc.version !== LOCK_FORMAT) bad(`version must be ${LOCK_FORMAT}`);
  const tables = doc.images ?? [];
  if (!Array.isArray(tables)) bad("images must be [[images]] tables");
  const entries = (tables as unknown[]).map((table, i) => {
    const problem = entryProblem(table);
    return problem === undefined ? (table as LockEntry) : bad(`images[${i}]: ${problem}`);
  });
  const seen = new Set<string>();
  for (const entry of entries) {
    const spec = lockedSpec(entry);
    if (seen.has(spec)) bad(`${spec} is locked twice`);
    seen.add(spec);
    entry.sha256 = entry.sha256.toLowerCase();
  }
  return entries;
}

/** What is wrong with one `[[images]]` table, if anything. */
function entryProblem(table: unknown): string | undefined {
  if (typeof table !== "object" || table === null || Array.isArray(table)) return "not a table";
  const t = table as Record<string, unknown>;
  const unknown = Object.keys(t).find((k) => !(ENTRY_KEYS as readonly string[]).includes(k));
  if (unknown !== undefined) return `unknown key ${quote(unknown)}`;
  for (const key of ENTRY_KEYS) {
    if (typeof t[key] !== "string" || t[key] === "") return `${key} must be a non-empty string`;
  }
  const e = t as unknown as LockEntry;
  const problem =
    nameProblem(e.name, "name") ??
    nameProblem(e.version, "version") ??
    prefixed("sha256", sha256Problem(e.sha256)) ??
    prefixed("url", urlProblem(e.url, IMAGE_URL_SCHEMES));
  // As in a registry: what came from the network may not point at a local file.
  if (problem === undefined && urlScheme(e.url) === "file:" && isRemote(e.registry)) {
    return `url ${quote(e.url)} is a local file, refused for an image of the remote registry ${quote(e.registry)}`;
  }
  return problem;
}

function prefixed(key: string, problem: string | undefined): string | undefined {
  return problem === undefined ? undefined : `${key} ${problem}`;
}

/** `entries` sorted by name, then version (the lock file's order). */
export function sortLocked(entries: readonly LockEntry[]): LockEntry[] {
  return [...entries].sort((a, b) =>
    a.name < b.name ? -1 : a.name > b.name ? 1 : compareVersions(a.version, b.version),
  );
}

/** The text of a lock file holding `entries` (sorted by name, then version). */
export async function serializeLockFile(entries: readonly LockEntry[]): Promise<string> {
  const { stringify } = await import("smol-toml");
  const images = sortLocked(entries).map((e) => {
    const table: Record<string, string> = {};
    for (const key of ENTRY_KEYS) table[key] = e[key];
    return table;
  });
  return (
    "# Written by `axvisor-image lock`: the exact images `axvisor-image pull --locked` pulls.\n" +
    "# Commit it; update it with `axvisor-image lock --update`.\n" +
    `${stringify({ version: LOCK_FORMAT, images })}\n`
  );
}

/**
 * Writes the lock file at `path` atomically (a reader sees the old file or the new one).
 *
 * @throws AxError naming the file when it cannot be written.
 */
export async function writeLockFile(path: string, entries: readonly LockEntry[]): Promise<void> {
  const text = await serializeLockFile(entries);
  try {
    await writeFileAtomic(path, text);
  } catch (err) {
    throw fsError(err, "write", path);
  }
}
