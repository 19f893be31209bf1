import { join } from "node:path";
import type { ImageSpec } from "../registry/types.js";

/** The merged registry in the store. */
export const REGISTRY_FILE = "images.toml";
/** Unix seconds of the last successful sync. */
export const LAST_SYNC_FILE = ".last_sync";
/** Marker inside an extracted tree: sha256 of the archive it came from. */
export const MARKER_FILE = ".archive.sha256";
/** Our own bookkeeping directory inside a store (or `-o DIR`). */
export const BOOKKEEPING_DIR = ".axvisor-image";

/** Archive extensions the store uses, longest first so that `.tar.gz` wins over `.tar`. */
export const ARCHIVE_EXTENSIONS = [".tar.gz", ".tar.xz", ".tar.zst", ".tgz", ".txz", ".tar"];

/**
 * The archive extension named by a URL's path (`.tar.gz` when it names none we know): the
 * extension only names the file; the format is detected from the content.
 */
function archiveExtension(url: string, title?: string): string {
  const path = (title ?? url).split(/[?#]/)[0]?.toLowerCase() ?? "";
  return ARCHIVE_EXTENSIONS.find((ext) => path.endsWith(ext)) ?? ".tar.gz";
}

/** `<name>` or `<name>-<version>`: the tree's directory name and the archive's base name. */
export function imageBaseName(spec: ImageSpec): string {
  return spec.version === undefined ? spec.name : `${spec.name}-${spec.version}`;
}

/** Paths of one image in a store directory. */
export interface ImagePaths {
  /** The directory holding archive and tree: the store or `-o DIR`. */
  dir: string;
  /** `<name>[-<version>]`. */
  baseName: string;
  /** The archive file. */
  archive: string;
  /** `<archive>.part` while downloading. */
  part: string;
  /** The extracted tree. */
  tree: string;
  /** The marker file inside the tree. */
  marker: string;
}

/** Where an image pulled as `spec` (with an archive at `url`) lives in `dir`. */
export function imagePaths(dir: string, spec: ImageSpec, url: string, title?: string): ImagePaths {
  const baseName = imageBaseName(spec);
  const archive = join(dir, baseName + archiveExtension(url, title));
  const tree = join(dir, baseName);
  return { dir, baseName, archive, part: `${archive}.part`, tree, marker: join(tree, MARKER_FILE) };
}

/** Bookkeeping paths below `<dir>/.axvisor-image/`. */
export function bookkeeping(dir: string): {
  root: string;
  locks: string;
  staging: string;
  trash: string;
  stamps: string;
  registryCache: string;
  imagesCache: string;
  fallbackMark: string;
} {
  const root = join(dir, BOOKKEEPING_DIR);
  return {
    root,
    locks: join(root, "locks"),
    staging: join(root, "staging"),
    trash: join(root, "trash"),
    stamps: join(root, "verified"),
    registryCache: join(root, "registry-cache"),
    imagesCache: join(root, "images.json"),
    fallbackMark: join(root, "from-fallback-registry"),
  };
}
