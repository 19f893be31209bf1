/**
 * Pulled-as records: for each archive and tree a pull installs, which registry entry it was pulled
 * as (`<dir>/.axvisor-image/pulled/<file name>.json`). They are what proves a copy is ours and
 * which version it holds: a registry may release one archive (one sha256) under several versions,
 * so a digest alone cannot say.
 */
import { rm } from "node:fs/promises";
import { parseSpec } from "../registry/resolve.js";
import type { ImageEntry, ImageSpec } from "../registry/types.js";
import { recordPath } from "./layout.js";
import { readOptionalJson, writeOptionalJson } from "./optional-file.js";

/** What an archive or tree was pulled as. */
export interface PulledAs {
  /** The spec it was pulled as: `NAME` or `NAME:VERSION`. */
  image: string;
  /** The registry entry it holds. */
  name: string;
  version: string;
  /** sha256 of the archive (the tree's marker). */
  sha256: string;
}

/** A record is a few hundred bytes; anything bigger is not one. */
const MAX_RECORD_BYTES = 4096;
const SHA256 = /^[0-9a-f]{64}$/;

/** The record of `entry` pulled as `spec`. */
export function pulledAs(spec: string, entry: ImageEntry): PulledAs {
  return { image: spec, name: entry.name, version: entry.version, sha256: entry.sha256 };
}

/** The spec a record says its copy was pulled as. */
export function recordSpec(record: PulledAs): ImageSpec {
  return parseSpec(record.image);
}

function isRecord(value: unknown): value is PulledAs {
  const r = value as Partial<PulledAs> | null;
  if (typeof r !== "object" || r === null) return false;
  if (![r.image, r.name, r.version, r.sha256].every((v) => typeof v === "string")) return false;
  try {
    parseSpec(r.image!);
    parseSpec(`${r.name!}:${r.version!}`);
  } catch {
    return false;
  }
  return SHA256.test(r.sha256!);
}

/** The record of the archive or tree `item`, or undefined when it has none (or a broken one). */
export async function readPulledAs(item: string): Promise<PulledAs | undefined> {
  const value = await readOptionalJson(recordPath(item), MAX_RECORD_BYTES);
  return isRecord(value) ? value : undefined;
}

/**
 * Records that `item` (just installed, or found to hold `record.sha256`) was pulled as `record`,
 * atomically, unless it already says so. A record that cannot be written (read-only store, full
 * disk) is skipped: a copy without one is attributed by the safe rule of `scanStore`.
 */
export async function writePulledAs(item: string, record: PulledAs): Promise<void> {
  const current = await readPulledAs(item);
  const fields = ["image", "name", "version", "sha256"] as const;
  if (current && fields.every((f) => current[f] === record[f])) return;
  await writeOptionalJson(recordPath(item), record);
}

/** Forgets the record of `item` (it is being removed). */
export async function removePulledAs(item: string): Promise<void> {
  await rm(recordPath(item), { force: true });
}
