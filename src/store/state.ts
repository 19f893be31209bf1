import { mkdir, readFile, rm, stat } from "node:fs/promises";
import writeFileAtomic from "write-file-atomic";
import { AxError, hasCode } from "../errors.js";
import type { ImageEntry } from "../registry/types.js";
import { storeError } from "./access.js";
import { bookkeeping, registryFiles } from "./layout.js";
import { writeOptionalJson } from "./optional-file.js";

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
  try {
    const cache = JSON.parse(await readFile(cachePath, "utf8")) as ImagesCache;
    if (cache.size === st.size && cache.mtimeMs === st.mtimeMs && cache.ino === st.ino) {
      return { kind: "ok", images: cache.images };
    }
  } catch {
    // no usable cache: parse the TOML
  }
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
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

/**
 * Replaces the store's `images.toml` atomically (temporary file, fsync, rename) and records the
 * sync time: a reader sees the old file or the new one, never a torn one.
 */
export async function writeRegistry(store: string, images: ImageEntry[]): Promise<void> {
  const { serializeImages } = await import("../registry/format.js");
  const { registry: path, lastSync } = registryFiles(store);
  try {
    await mkdir(store, { recursive: true });
    await writeFileAtomic(path, serializeImages(images));
    const st = await stat(path);
    await writeImagesCache(store, { size: st.size, mtimeMs: st.mtimeMs, ino: st.ino, images });
  } catch (err) {
    throw await storeError(store, err, "write", path);
  }
  try {
    await writeFileAtomic(lastSync, String(Math.floor(Date.now() / 1000)));
  } catch (err) {
    throw await storeError(store, err, "write", lastSync);
  }
}

/** Unix seconds of the last successful sync, or undefined when unknown or unreadable. */
export async function readLastSync(store: string): Promise<number | undefined> {
  try {
    const text = (await readFile(registryFiles(store).lastSync, "utf8")).trim();
    return /^\d+$/.test(text) ? Number(text) : undefined;
  } catch {
    return undefined;
  }
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
 * Records where the store's registry was synced from: `url`, the configured registry or, with
 * `fallback`, the fallback registry (so that nothing treats images only the fallback lacks as
 * orphans).
 */
export async function markSource(store: string, url: string, fallback: boolean): Promise<void> {
  const { fallbackMark, syncSource } = bookkeeping(store);
  await writeFileAtomic(syncSource, url, { fsync: false });
  if (fallback) await writeFileAtomic(fallbackMark, url, { fsync: false });
  else await rm(fallbackMark, { force: true });
}

async function readMark(path: string): Promise<string | undefined> {
  try {
    return (await readFile(path, "utf8")).trim() || undefined;
  } catch {
    return undefined;
  }
}

/** The fallback registry the store's registry came from, when it did. */
export function readFallbackMark(store: string): Promise<string | undefined> {
  return readMark(bookkeeping(store).fallbackMark);
}

/** The registry URL the store's registry was last synced from, when known. */
export function readSyncSource(store: string): Promise<string | undefined> {
  return readMark(bookkeeping(store).syncSource);
}
