/**
 * Where the store's registry came from: one provenance record per entry of `images.toml` (which
 * configured registry, which of its files, read how), kept beside it in
 * `.axvisor-image/provenance.json`, and the last good copy of each registry, which a sync uses
 * when that registry fails. `images.toml` itself stays exactly what the Rust tool writes and
 * reads: the records are bound to it by its size, mtime, inode and sha256, so that a registry the
 * Rust tool (or anyone) wrote over it is never described by records of another one.
 */
import { readFile, stat } from "node:fs/promises";
import { AxError } from "../errors.js";
import { formatSpec } from "../registry/resolve.js";
import type { ImageEntry, ImageSpec } from "../registry/types.js";
import { bookkeeping, registryCopyPath, registryFiles } from "./layout.js";
import { readOptionalJson, writeOptionalJson } from "./optional-file.js";

/** Largest provenance record or registry copy read (a copy holds a whole registry file). */
const MAX_BOOKKEEPING_JSON_BYTES = 256 * 1024 * 1024;
import { textDigest, type RegistryFileIdentity } from "./state.js";

/**
 * How a registry was read at the sync: `registry` (its own files), `fallback` (its fallback file,
 * the registry failing), `last-good` (its copy from an earlier sync, registry and fallback
 * failing).
 */
export type ReadVia = "registry" | "fallback" | "last-good";

/** Where one entry of the store's registry came from. */
export interface Provenance {
  /** The registry as configured: a built-in name (`axvisor`, `tgos`), or a URL or path. */
  registry: string;
  /** The registry file that listed the entry: the root, one of its includes, or its fallback. */
  file: string;
  /** How the registry was read. */
  via: ReadVia;
}

/**
 * The entries one registry file gave the store's registry, and where they came from: the form in
 * which records are kept (later fields, such as the key a signed file was verified with, belong
 * here too, once per file).
 */
export interface ProvenanceGroup extends Provenance {
  /** The entries, as `NAME:VERSION`. */
  images: string[];
}

/** The provenance of the store's registry, entry by entry. */
export interface ProvenanceIndex {
  /** The record of `entry`, when the store's registry has one for it. */
  of(entry: ImageSpec): Provenance | undefined;
  /** Every registry the store's registry was merged from, in the configured order. */
  registries: string[];
  /** How the registry `registry` was read at that sync; undefined when it was not merged in. */
  via(registry: string): ReadVia | undefined;
}

/** The document of `.axvisor-image/provenance.json`. */
interface ProvenanceDocument {
  format: 1;
  /** The `images.toml` it describes. */
  images_toml: RegistryFileIdentity;
  groups: ProvenanceGroup[];
}

const VIA: readonly string[] = ["registry", "fallback", "last-good"];

function isGroup(value: unknown): value is ProvenanceGroup {
  const g = value as Partial<ProvenanceGroup> | null;
  return (
    typeof g === "object" &&
    g !== null &&
    typeof g.registry === "string" &&
    typeof g.file === "string" &&
    typeof g.via === "string" &&
    VIA.includes(g.via) &&
    Array.isArray(g.images) &&
    g.images.every((i) => typeof i === "string")
  );
}

/**
 * Records where each entry of the store's `images.toml` (as `identity` says it was written) came
 * from. Optional bookkeeping: a failure to write it only leaves the entries without a record.
 */
export function writeProvenance(
  store: string,
  identity: RegistryFileIdentity,
  groups: ProvenanceGroup[],
): Promise<void> {
  const document: ProvenanceDocument = { format: 1, images_toml: identity, groups };
  return writeOptionalJson(bookkeeping(store).provenance, document);
}

/** True when the store's `images.toml` is the one `identity` describes. */
async function describes(store: string, identity: RegistryFileIdentity): Promise<boolean> {
  const path = registryFiles(store).registry;
  const st = await stat(path);
  if (st.size !== identity.size) return false;
  if (st.mtimeMs === identity.mtimeMs && st.ino === identity.ino) return true;
  return textDigest(await readFile(path, "utf8")) === identity.sha256;
}

/**
 * The provenance of the store's registry, or undefined when it has none (synced by an older
 * version or by the Rust tool, or the records do not describe the `images.toml` there now).
 */
export async function readProvenance(store: string): Promise<ProvenanceIndex | undefined> {
  let document: ProvenanceDocument;
  try {
    const read = await readOptionalJson(bookkeeping(store).provenance, MAX_BOOKKEEPING_JSON_BYTES);
    if (read === undefined) return undefined;
    document = read as ProvenanceDocument;
    if (document.format !== 1 || !Array.isArray(document.groups)) return undefined;
    if (!document.groups.every(isGroup)) return undefined;
    if (!(await describes(store, document.images_toml))) return undefined;
  } catch {
    return undefined;
  }
  const byEntry = new Map<string, Provenance>();
  const registries = new Map<string, ReadVia>();
  for (const { registry, file, via, images } of document.groups) {
    registries.set(registry, via);
    for (const image of images) byEntry.set(image, { registry, file, via });
  }
  return {
    of: (entry) => byEntry.get(formatSpec(entry)),
    registries: [...registries.keys()],
    via: (registry) => registries.get(registry),
  };
}

/** A registry as a sync last read it successfully: its files' entries, in breadth-first order. */
export interface RegistryCopy {
  /** The registry as configured (built-in name, URL or path). */
  registry: string;
  /** Where its root file was. */
  url: string;
  /** Unix seconds of that sync. */
  syncedAt: number;
  /** Each file read, with the entries it gave (first seen: none twice across files). */
  files: { file: string; images: ImageEntry[] }[];
}

/** The document of a last good copy: each file's entries as the store's TOML form. */
interface RegistryCopyDocument {
  registry: string;
  url: string;
  synced_at: number;
  files: { file: string; toml: string }[];
}

/** Keeps `copy` as the last good copy of its registry (optional bookkeeping, as provenance). */
export async function writeRegistryCopy(store: string, copy: RegistryCopy): Promise<void> {
  const { serializeImages } = await import("../registry/format.js");
  const document: RegistryCopyDocument = {
    registry: copy.registry,
    url: copy.url,
    synced_at: copy.syncedAt,
    files: copy.files.map(({ file, images }) => ({ file, toml: serializeImages(images) })),
  };
  await writeOptionalJson(registryCopyPath(store, copy.registry), document);
}

/**
 * The last good copy of `registry`, or undefined when there is none (or it is unreadable). Its
 * entries are validated as the store's `images.toml` is.
 */
export async function readRegistryCopy(
  store: string,
  registry: string,
): Promise<RegistryCopy | undefined> {
  const { parseRegistry } = await import("../registry/format.js");
  const path = registryCopyPath(store, registry);
  try {
    const document = (await readOptionalJson(
      path,
      MAX_BOOKKEEPING_JSON_BYTES,
    )) as RegistryCopyDocument;
    if (document.registry !== registry || typeof document.url !== "string") return undefined;
    if (typeof document.synced_at !== "number" || !Array.isArray(document.files)) return undefined;
    const files = document.files.map(({ file, toml }) => {
      if (typeof file !== "string" || typeof toml !== "string") throw new AxError("not a copy");
      return { file, images: parseRegistry(toml, path, { trusted: true }).images };
    });
    return { registry, url: document.url, syncedAt: document.synced_at, files };
  } catch {
    return undefined;
  }
}
