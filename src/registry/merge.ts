/** Merging the images of several registry files into one list. */

import { formatSpec } from "./resolve.js";
import type { ImageEntry } from "./types.js";

/** The images of one registry file, and the URL or path they came from. */
export interface ImageSource {
  /** URL or path of the registry file, for warnings. */
  source: string;
  /** Its images, in file order. */
  images: readonly ImageEntry[];
}

/** The merged images, in first-seen order, and one warning per conflicting duplicate. */
export interface MergeResult {
  /** One entry per (name, version): the first seen. */
  images: ImageEntry[];
  /** For each of `images`, the index of the source it came from. */
  origins: number[];
  /** One line per conflicting duplicate. */
  warnings: string[];
}

/**
 * Deduplicates by (name, version), in the order given: the first entry wins. A later entry with
 * the same key and different content gives a warning naming the image and both sources; an
 * identical duplicate is dropped silently.
 */
export function mergeImages(sources: readonly ImageSource[]): MergeResult {
  const kept = new Map<string, { image: ImageEntry; source: string; origin: number }>();
  const warnings: string[] = [];
  for (const [origin, { source, images }] of sources.entries()) {
    for (const image of images) {
      const key = `${image.name}\0${image.version}`;
      const first = kept.get(key);
      if (first === undefined) {
        kept.set(key, { image, source, origin });
      } else if (!sameEntry(first.image, image)) {
        warnings.push(
          `image ${formatSpec(image)} in ${source} differs from the one in ${first.source}; ` +
            `keeping the one from ${first.source}`,
        );
      }
    }
  }
  const firsts = [...kept.values()];
  return { images: firsts.map((k) => k.image), origins: firsts.map((k) => k.origin), warnings };
}

function sameEntry(a: ImageEntry, b: ImageEntry): boolean {
  return (
    a.description === b.description &&
    a.sha256 === b.sha256 &&
    a.arch === b.arch &&
    a.url === b.url &&
    a.released_at === b.released_at
  );
}
