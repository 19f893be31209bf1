import { createHash } from "node:crypto";
import { mkdir, rm, stat } from "node:fs/promises";
import { replaceFile } from "../atomic-file.js";
import { AxError, hasCode } from "../errors.js";
import type { ImageEntry } from "../registry/types.js";
import { FileProblemError, readRegularFile } from "../regular-file.js";
import { storeError } from "./access.js";
import { bookkeeping, registryFiles } from "./layout.js";
import { readOptionalJson, readOptionalText, writeOptionalJson } from "./optional-file.js";

/** Largest store registry read (`images.toml`, merged from every registry): 256 MiB. */
const MAX_STORE_REGISTRY_BYTES = 256 * 1024 * 1024;
/** Largest `.last_sync` or mark read (a number, a registry list, a reason). */
const MAX_MARK_BYTES = 1024 * 1024;

/** What the store's `images.toml` holds right now. */
export type RegistryState =
  | { kind: "ok"; images: ImageEntry[] }
  | { kind: "missing"; path: string }
  | { kind: "corrupt"; path: string; error: AxError };

interface ImagesCache {
  size: number;
  mtimeMs: number;
  ino: number;
  images: ImageEntry[];
}

/**
 * Reads the store's `images.toml`. A parsed copy is kept as JSON under `.axvisor-image/` keyed by
 * the file's size, mtime and inode, so listing a 20,000-entry registry does not re-parse TOML.
 */
export async function readRegistryState(store: string): Promise<RegistryState> {
  const path = registryFiles(store).registry;
  let st;
  try {
    st = await stat(path);
  } catch (err) {
    if (hasCode(err, "ENOENT")) return { kind: "missing", path };
    throw await storeError(store, err, "read", path);
  }
  const cachePath = bookkeeping(store).imagesCache;
  // No usable cache: parse the TOML.
  const cache = (await readOptionalJson(cachePath, MAX_STORE_REGISTRY_BYTES * 4)) as
    ImagesCache | undefined;
  if (cache?.size === st.size && cache.mtimeMs === st.mtimeMs && cache.ino === st.ino) {
    return { kind: "ok", images: cache.images };
  }
  let text: string;
  try {
    text = (await readRegularFile(path, MAX_STORE_REGISTRY_BYTES)).toString("utf8");
  } catch (err) {
    // A FIFO or a device in its place (a restored cache) is never waited on: a sync replaces it.
    if (err instanceof FileProblemError) return { kind: "corrupt", path, error: err };
    throw await storeError(store, err, "read", path);
  }
  const { parseRegistry } = await import("../registry/format.js");
  try {
    // The store writes this file itself: the canonical fast reader applies (it still validates).
    const images = parseRegistry(text, path, { trusted: true }).images;
    await writeImagesCache(store, { size: st.size, mtimeMs: st.mtimeMs, ino: st.ino, images });
    return { kind: "ok", images };
  } catch (err) {
    if (err instanceof AxError) return { kind: "corrupt", path, error: err };
    throw err;
  }
}

function writeImagesCache(store: string, cache: ImagesCache): Promise<void> {
  return writeOptionalJson(bookkeeping(store).imagesCache, cache);
}

/** Which `images.toml` a piece of bookkeeping describes: the file as written, and its content. */
export interface RegistryFileIdentity {
  size: number;
  mtimeMs: number;
  ino: number;
  /** sha256 of the file's content. */
  sha256: string;
}

/** sha256 of a text, hex. */
export function textDigest(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

/**
 * Replaces the store's `images.toml` atomically (temporary file, fsync, rename) and records the
 * sync time: a reader sees the old file or the new one, never a torn one. Returns what identifies
 * the file written (for the provenance records bound to it).
 */
export async function writeRegistry(
  store: string,
  images: ImageEntry[],
): Promise<RegistryFileIdentity> {
  const { serializeImages } = await import("../registry/format.js");
  const { registry: path, lastSync } = registryFiles(store);
  let identity: RegistryFileIdentity;
  try {
    await mkdir(store, { recursive: true });
    const text = serializeImages(images);
    await replaceFile(path, text);
    const st = await stat(path);
    await writeImagesCache(store, { size: st.size, mtimeMs: st.mtimeMs, ino: st.ino, images });
    identity = { size: st.size, mtimeMs: st.mtimeMs, ino: st.ino, sha256: textDigest(text) };
  } catch (err) {
    throw await storeError(store, err, "write", path);
  }
  try {
    await replaceFile(lastSync, String(Math.floor(Date.now() / 1000)));
  } catch (err) {
    throw await storeError(store, err, "write", lastSync);
  }
  return identity;
}

/** Unix seconds of the last successful sync, or undefined when unknown or unreadable. */
export async function readLastSync(store: string): Promise<number | undefined> {
  const text = (await readOptionalText(registryFiles(store).lastSync, MAX_MARK_BYTES))?.trim();
  return text !== undefined && /^\d+$/.test(text) ? Number(text) : undefined;
}

/**
 * Whether a present registry is stale: no `.last_sync`, older than `threshold` seconds, or in the
 * future (a clock that went back must not make a registry fresh forever). Threshold 0 = never.
 */
export function isStale(lastSync: number | undefined, threshold: number, now: number): boolean {
  if (threshold === 0) return false;
  if (lastSync === undefined || lastSync > now) return true;
  return now - lastSync >= threshold;
}

/**
 * Records where the store's registry was synced from (`source`: the registry URL, or the list of
 * registries) and, with `incomplete`, why it lists less than its registries do (one read from its
 * fallback registry, one missing), so that nothing treats images it lacks as orphans.
 */
export async function markSource(
  store: string,
  source: string,
  incomplete: string | undefined,
): Promise<void> {
  const { fallbackMark, syncSource } = bookkeeping(store);
  await replaceFile(syncSource, source, { fsync: false });
  if (incomplete !== undefined) await replaceFile(fallbackMark, incomplete, { fsync: false });
  else await rm(fallbackMark, { force: true });
}

async function readMark(path: string): Promise<string | undefined> {
  return (await readOptionalText(path, MAX_MARK_BYTES))?.trim() || undefined;
}

/**
 * Why the store's registry lists less than its registries do (one read from its fallback
 * registry, one missing), when it does.
 */
export function readIncompleteMark(store: string): Promise<string | undefined> {
  return readMark(bookkeeping(store).fallbackMark);
}

/**
 * Records the trust settings (`[[trust]]`, `require_signatures`) the store's registry was synced
 * under, as `fingerprint` (empty: none), so that a change to them makes the next command sync.
 */
export async function markTrust(store: string, fingerprint: string): Promise<void> {
  const { syncTrust } = bookkeeping(store);
  if (fingerprint === "") await rm(syncTrust, { force: true });
  else await replaceFile(syncTrust, fingerprint, { fsync: false });
}

/** The fingerprint {@link markTrust} recorded ("" when none: synced without trust settings). */
export async function readSyncedTrust(store: string): Promise<string> {
  return (await readMark(bookkeeping(store).syncTrust)) ?? "";
}

/** The registry URL the store's registry was last synced from, when known. */
export function readSyncSource(store: string): Promise<string | undefined> {
  return readMark(bookkeeping(store).syncSource);
}
