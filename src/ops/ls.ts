import { compareNewestFirst } from "../registry/resolve.js";
import type { ImageEntry } from "../registry/types.js";

/** One row of `ls`: an image name with its newest version, or one version with `verbose`. */
export interface ListRow {
  name: string;
  /** The newest version, or the row's version with `verbose`. */
  version: string;
  arch: string;
  description: string;
  /** How many versions of this name the registry has. */
  versions: number;
  /** The entry the row shows. */
  entry: ImageEntry;
}

/** Options of {@link listImages}. */
export interface ListOptions {
  /** A regular expression on the name, or a plain substring when it is not a valid regex. */
  pattern?: string;
  /** One row per version instead of one per name. */
  verbose?: boolean;
}

/** A predicate for `ls PATTERN`: regex when it compiles, substring otherwise. */
function namePredicate(pattern: string | undefined): (name: string) => boolean {
  if (pattern === undefined || pattern === "") return () => true;
  try {
    const re = new RegExp(pattern);
    return (name) => re.test(name);
  } catch {
    return (name) => name.includes(pattern);
  }
}

/** The rows of `ls`, sorted by name (and newest version first with `verbose`). */
export function listImages(images: ImageEntry[], options: ListOptions = {}): ListRow[] {
  const matches = namePredicate(options.pattern);
  const byName = new Map<string, ImageEntry[]>();
  for (const entry of images) {
    if (!matches(entry.name)) continue;
    const list = byName.get(entry.name);
    if (list) list.push(entry);
    else byName.set(entry.name, [entry]);
  }
  const rows: ListRow[] = [];
  for (const name of [...byName.keys()].sort()) {
    const versions = byName.get(name)!.sort(compareNewestFirst);
    for (const entry of options.verbose ? versions : versions.slice(0, 1)) {
      rows.push({
        name,
        version: entry.version,
        arch: entry.arch,
        description: entry.description,
        versions: versions.length,
        entry,
      });
    }
  }
  return rows;
}
