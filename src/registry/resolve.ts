/**
 * Resolution: image specs on the command line (`NAME[:VERSION]`), finding them in a registry (or
 * failing with a "did you mean" hint), and the release order every listing sorts by.
 */

import { AxError, UsageError } from "../errors.js";
import { isRootfsAlias } from "./aliases.js";
import { nameProblem, parseRfc3339 } from "./rules.js";
import type { ImageEntry, ImageSpec } from "./types.js";

/**
 * Parses `NAME` or `NAME:VERSION`.
 *
 * @throws UsageError naming the spec when the name is empty, the version after `:` is empty, or
 *   either holds characters outside `[A-Za-z0-9._+-]`.
 */
export function parseSpec(text: string): ImageSpec {
  const colon = text.indexOf(":");
  const name = colon < 0 ? text : text.slice(0, colon);
  const version = colon < 0 ? undefined : text.slice(colon + 1);
  const problem =
    nameProblem(name, "name") ??
    (version === undefined ? undefined : nameProblem(version, "version"));
  if (problem !== undefined) {
    throw new UsageError(`invalid image ${JSON.stringify(text)}: ${problem}`, {
      hint: "images are given as NAME or NAME:VERSION",
    });
  }
  return version === undefined ? { name } : { name, version };
}

/** `NAME` or `NAME:VERSION`: the text {@link parseSpec} reads back as `spec`. */
export function formatSpec(spec: ImageSpec): string {
  return spec.version === undefined ? spec.name : `${spec.name}:${spec.version}`;
}

/**
 * The entry `spec` names: with a version, that exact entry; with a name alone, the one with the
 * latest `released_at` (entries without it sort earliest), ties broken by the higher version
 * (compared part by part, digit runs as numbers), then by the earlier position in `images`.
 */
export function findImage(images: readonly ImageEntry[], spec: ImageSpec): ImageEntry | undefined {
  if (spec.version !== undefined) {
    return images.find((i) => i.name === spec.name && i.version === spec.version);
  }
  let best: ImageEntry | undefined;
  for (const image of images) {
    if (image.name === spec.name && (best === undefined || compareReleases(image, best) > 0)) {
      best = image;
    }
  }
  return best;
}

/**
 * Orders two entries by release: the later `released_at` is newer (entries without it are the
 * oldest), ties broken by {@link compareVersions}. Returns >0 when `a` is newer. `NAME` alone
 * resolves to the newest by this order, and every listing sorts by it.
 */
export function compareReleases(a: ImageEntry, b: ImageEntry): number {
  const ta = releaseTime(a);
  const tb = releaseTime(b);
  if (ta !== tb) return ta > tb ? 1 : -1;
  return compareVersions(a.version, b.version);
}

/** Parsed release times: sorting compares each entry many times. */
const releaseTimes = new WeakMap<ImageEntry, number>();

/** Milliseconds since the epoch of the entry's `released_at`; `-Infinity` without one. */
function releaseTime(image: ImageEntry): number {
  let time = releaseTimes.get(image);
  if (time === undefined) {
    time =
      image.released_at === undefined ? -Infinity : (parseRfc3339(image.released_at) ?? -Infinity);
    releaseTimes.set(image, time);
  }
  return time;
}

/** Newest first, by the order `NAME` resolves with ({@link compareReleases}). */
export function compareNewestFirst(a: ImageEntry, b: ImageEntry): number {
  return compareReleases(b, a);
}

/**
 * Orders versions part by part: runs of digits compare as numbers (`0.0.9` < `0.0.26`), other
 * runs as text; a version that is a prefix of the other sorts first. Returns <0, 0 or >0.
 */
export function compareVersions(a: string, b: string): number {
  const partsA = a.match(VERSION_PARTS) ?? [];
  const partsB = b.match(VERSION_PARTS) ?? [];
  for (let i = 0; i < Math.min(partsA.length, partsB.length); i++) {
    const x = partsA[i] ?? "";
    const y = partsB[i] ?? "";
    const order = isDigits(x) && isDigits(y) ? compareDigits(x, y) : compareText(x, y);
    if (order !== 0) return order;
  }
  return partsA.length - partsB.length;
}

const VERSION_PARTS = /\d+|\D+/g;

function isDigits(part: string): boolean {
  return part.charCodeAt(0) >= 48 && part.charCodeAt(0) <= 57;
}

/** Compares digit strings of any length as numbers. */
function compareDigits(x: string, y: string): number {
  const a = x.replace(/^0+/, "");
  const b = y.replace(/^0+/, "");
  return a.length !== b.length ? a.length - b.length : compareText(a, b);
}

function compareText(x: string, y: string): number {
  return x < y ? -1 : x > y ? 1 : 0;
}

/** Resolves `spec` in `images`, or fails naming it with a hint. */
export function resolveImage(images: ImageEntry[], spec: ImageSpec): ImageEntry {
  const entry = findImage(images, spec);
  if (entry) return entry;
  const text = formatSpec(spec);
  const versions = images.filter((i) => i.name === spec.name).map((i) => i.version);
  if (spec.version !== undefined && versions.length > 0) {
    throw new AxError(`image ${spec.name} has no version ${spec.version}`, {
      hint: `available versions: ${versions.join(", ")}`,
    });
  }
  if (isRootfsAlias(spec.name)) {
    throw new AxError(`image not found: ${text}`, {
      hint: `${spec.name} is a rootfs alias: give the architecture, e.g. \`axvisor-image pull --arch aarch64 ${text}\``,
    });
  }
  const close = suggest(images, spec.name);
  throw new AxError(`image not found: ${text}`, {
    hint:
      (close.length > 0 ? `did you mean ${close.join(", ")}? ` : "") +
      "run `axvisor-image ls` to see the available images",
  });
}

/** Largest edit distance {@link suggest} accepts for a name of `length` characters. */
function tolerance(length: number): number {
  return Math.max(1, Math.floor(length / 5));
}

/**
 * Up to `max` image names close to `name`, closest first, for a "did you mean" hint: names within
 * a few edits (ignoring case), or containing `name`.
 */
export function suggest(images: readonly ImageEntry[], name: string, max = 3): string[] {
  const wanted = name.toLowerCase();
  const scored: { name: string; distance: number }[] = [];
  for (const candidate of new Set(images.map((i) => i.name))) {
    if (candidate === name) continue;
    const lower = candidate.toLowerCase();
    const distance = lower.includes(wanted) ? 0 : editDistance(wanted, lower);
    if (distance <= tolerance(name.length)) scored.push({ name: candidate, distance });
  }
  scored.sort((a, b) => a.distance - b.distance || compareText(a.name, b.name));
  return scored.slice(0, max).map((s) => s.name);
}

/** Levenshtein distance between `a` and `b`. */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = (previous[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1);
      current.push(Math.min(substitution, (previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1));
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}
