/**
 * The JSON documents the CLI prints with `--json`: stable shapes that scripts may rely on. Fields
 * are only ever added, never renamed or removed; absent values are `null`, never missing. Paths are
 * absolute; sizes are disk usage in bytes (allocated blocks, as `du` counts them).
 */
import { existsSync } from "node:fs";
import type { AxError } from "../errors.js";
import type { StoredImage, StoreUsage } from "../ops/du.js";
import { diskUsage, type LocalState } from "../store/scan.js";
import { verifiedImageKey } from "../store/signatures.js";
import type { PullResult } from "../ops/pull.js";
import type { ImageEntry } from "../registry/types.js";
import type { Provenance, ProvenanceIndex } from "../store/provenance.js";
import { escapeJsonText, redactCredentials } from "../text.js";

/** One registry entry and where it is in the store: an element of `ls --json` and `info --json`. */
export interface ImageJson {
  /** Image name. */
  name: string;
  /** Version. */
  version: string;
  /** CPU architecture, e.g. `aarch64`. */
  arch: string;
  /** Human description. */
  description: string;
  /** sha256 of the archive, 64 lower-case hex digits. */
  sha256: string;
  /** Where the archive is downloaded from; credentials in it redacted (`https://***@host/`). */
  url: string;
  /** RFC 3339 release time as the registry writes it, or null. */
  released_at: string | null;
  /** The archive of this version in the store, or null when it is not there. */
  archive: string | null;
  /** The extracted tree of this version in the store, or null when it is not there. */
  tree: string | null;
  /** Disk usage of `archive` and `tree` together (0 when neither is there). */
  bytes: number;
  /** True when this version is in the store: its tree, or its archive (`pull --no-extract`). */
  pulled: boolean;
  /**
   * The registry the entry came from, as configured: `axvisor`, `tgos`, or a URL or path; null
   * when the store's registry has no provenance records (synced by the Rust tool or an older
   * version).
   */
  registry: string | null;
}

/** A registry entry as `ls --json` and `info --json` print it. */
export interface RegistryImageJson extends ImageJson {
  /**
   * The id of the key (as minisign prints it: up to 16 hex digits) that signed the registry file
   * this entry came from, when the sync verified it under a pinned key (`[[trust]]`); null when it
   * was not verified.
   */
  verified_by: string | null;
}

/**
 * `entry` with its local state, its provenance and the key that verified it, as
 * {@link RegistryImageJson}.
 */
export function registryImageJson(
  entry: ImageEntry,
  local: LocalState,
  provenance: Provenance | undefined,
  verified: ReadonlyMap<string, string>,
): RegistryImageJson {
  const keyId = verified.get(verifiedImageKey(entry.name, entry.version));
  return { ...imageJson(entry, local, provenance), verified_by: keyId ?? null };
}

/** A pulled image: an element of `pull --json`. */
export interface PullJson extends ImageJson {
  /** The argument, as given (`NAME` or `NAME:VERSION`). */
  image: string;
  /** Always true here: the image was pulled. */
  ok: true;
  /** What `pull` prints: the tree, or the archive with `--no-extract`. */
  path: string;
  /**
   * The file named like the image at the top of its tree (a single-file archive's file, such as
   * a tgosimages rootfs `.img`: what axbuild's pull returns), or null.
   */
  file: string | null;
}

/** An image `pull` could not pull: an element of `pull --json`. */
export interface PullErrorJson {
  /** The argument, as given. */
  image: string;
  /** Always false here. */
  ok: false;
  /** The one-line error message. */
  error: string;
  /** The hint that goes with it, or null. */
  hint: string | null;
}

/** One base name in the store: an element of `images` in `du --json`. */
export interface StoredImageJson {
  /** How it was pulled: `NAME`, `NAME:VERSION`, or the bare file name when no image owns it. */
  image: string;
  /** The registry version it holds, or null when unknown. */
  version: string | null;
  /** True when no registry entry owns it (`prune` removes the copies the tool provably made). */
  orphan: boolean;
  /** The archive file, or null. */
  archive: string | null;
  /** The extracted tree, or null. */
  tree: string | null;
  /** Disk usage of the archive(s). */
  archive_bytes: number;
  /** Disk usage of the tree. */
  tree_bytes: number;
}

/** The document `du --json` (and `ls --local --json`) prints. */
export interface StoreJson {
  /** The store directory. */
  store: string;
  /** Where the trees are when not in the store (`-E`), else null. */
  extract_dir: string | null;
  /** What the store holds, by base name. */
  images: StoredImageJson[];
  /** Interrupted downloads, staging trees, trash and upload sessions, which `prune` removes. */
  leftovers: { kind: "part" | "staging" | "trash" | "upload"; path: string; bytes: number }[];
  /** Disk usage of the whole store, bookkeeping included. */
  total_bytes: number;
}

/** `entry` with its local state and its provenance as {@link ImageJson}. */
export function imageJson(
  entry: ImageEntry,
  local: LocalState,
  provenance: Provenance | undefined,
): ImageJson {
  return {
    name: entry.name,
    version: entry.version,
    arch: entry.arch,
    description: entry.description,
    sha256: entry.sha256,
    url: entry.url,
    released_at: entry.released_at ?? null,
    archive: local.archive ?? null,
    tree: local.tree ?? null,
    bytes: local.bytes,
    pulled: local.tree !== undefined || local.archive !== undefined,
    registry: provenance?.registry ?? null,
  };
}

function storedImageJson(image: StoredImage): StoredImageJson {
  return {
    image: image.image,
    version: image.version ?? null,
    orphan: image.orphan,
    archive: image.archive ?? null,
    tree: image.tree ?? null,
    archive_bytes: image.archiveBytes,
    tree_bytes: image.treeBytes,
  };
}

/** `usage` as {@link StoreJson}. */
export function storeJson(usage: StoreUsage): StoreJson {
  return {
    store: usage.store,
    extract_dir: usage.extractDir ?? null,
    images: usage.images.map(storedImageJson),
    leftovers: usage.leftovers.map(({ kind, path, bytes }) => ({ kind, path, bytes })),
    total_bytes: usage.totalBytes,
  };
}

/**
 * The element of `pull --json` for the argument `image` and its outcome; `extracted` says
 * whether pull extracted (false with `--no-extract`).
 */
export async function pullJson(
  image: string,
  outcome: PromiseSettledResult<PullResult>,
  extracted: boolean,
  provenance: ProvenanceIndex | undefined,
): Promise<PullJson | PullErrorJson> {
  if (outcome.status === "rejected") {
    const err = outcome.reason as AxError;
    return { image, ok: false, error: err.message, hint: err.hint ?? null };
  }
  const pulled = outcome.value;
  const tree = extracted ? pulled.path : undefined;
  const local: LocalState = {
    bytes: (await diskUsage(pulled.archive)) + (tree ? await diskUsage(tree) : 0),
  };
  if (existsSync(pulled.archive)) local.archive = pulled.archive;
  if (tree) local.tree = tree;
  const described = imageJson(pulled.entry, local, provenance?.of(pulled.entry));
  return { image, ok: true, path: pulled.path, file: pulled.file ?? null, ...described };
}

/**
 * Prints `document` to stdout as one JSON document. Like the human output, it never carries
 * credentials (every string has the userinfo of its URLs redacted, `url` fields included) nor raw
 * control characters (those `JSON.stringify` leaves raw, such as C1 controls and U+2028, are
 * escaped as `\uXXXX`: the same JSON value).
 */
export function printJson(document: unknown): void {
  const redacted = (_key: string, value: unknown) =>
    typeof value === "string" ? redactCredentials(value) : value;
  process.stdout.write(`${escapeJsonText(JSON.stringify(document, redacted, 2))}\n`);
}
