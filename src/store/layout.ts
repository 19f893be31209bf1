/**
 * The store's layout: every path in a store (or `-o DIR`), the only module that joins one (the
 * registry and its sync marks, archives, `.part` files and their resume metadata, trees and their
 * markers, staging trees, trash, locks, verified-archive stamps, pulled-as records, caches), and
 * the one mapping from what an image was pulled as (`NAME` or `NAME:VERSION`) to its base name,
 * which names its archive, `.part`, tree, lock, staging trees, stamp and pulled-as records. The Rust tool's layout is kept
 * (`<name>`, `<name>-<version>`, `<base>.<ext>`); what it cannot map without ambiguity is refused
 * ({@link StoreNames}), so that no image's files are ever the store's own or another image's.
 */
import { createHash } from "node:crypto";
import { realpathSync } from "node:fs";
import { basename, dirname, join, relative, resolve, isAbsolute } from "node:path";
import { ARCHIVE_EXTENSIONS, archiveExtension } from "../archive/extensions.js";
import { AxError, UsageError } from "../errors.js";
import { formatSpec } from "../registry/resolve.js";
import type { ImageEntry, ImageSpec } from "../registry/types.js";

/** The merged registry in the store. */
const REGISTRY_FILE = "images.toml";
/** Unix seconds of the last successful sync. */
const LAST_SYNC_FILE = ".last_sync";
/** Marker inside an extracted tree: sha256 of the archive it came from. */
export const MARKER_FILE = ".archive.sha256";
/** Our own bookkeeping directory inside a store (or `-o DIR`). */
const BOOKKEEPING_DIR = ".axvisor-image";

/** A download in progress: `<archive>.part`. */
const PART_SUFFIX = ".part";
/** The resume metadata of a download in progress: `<archive>.part.json`. */
const PART_META_SUFFIX = ".json";
/** Suffixes of a download in progress: `<archive>.part` and its resume metadata. */
const PART_SUFFIXES = [PART_SUFFIX, PART_SUFFIX + PART_META_SUFFIX];

/**
 * The lock `sync` holds. Image locks are named by base names, which never start with a dot: no
 * image can share it.
 */
export const SYNC_LOCK = ".registry";

/**
 * The archive extension named by a URL's path (`.tar.gz` when it names none we know): the
 * extension only names the file; the format is detected from the content.
 */
function archiveExtensionFor(url: string, title?: string): string {
  return archiveExtension((title ?? url).split(/[?#]/)[0] ?? "") ?? ".tar.gz";
}

/** `<name>` or `<name>-<version>`: the tree's directory name and the archive's base name. */
export function imageBaseName(spec: ImageSpec): string {
  return spec.version === undefined ? spec.name : `${spec.name}-${spec.version}`;
}

/**
 * Why `baseName` can never name an image's files, or undefined when it can: it is (or would be a
 * temporary file of) the registry, a hidden name (`.last_sync`, `.axvisor-image`), or it ends like
 * an archive or a download in progress, so that its tree would be another image's archive or
 * `.part`. Compared case-insensitively: on case-folding file systems those are the same files.
 */
export function reservedNameProblem(baseName: string): string | undefined {
  const lower = baseName.toLowerCase();
  if (lower.startsWith(".")) return "is a hidden name, kept for the store's own files";
  if (lower === REGISTRY_FILE || lower.startsWith(`${REGISTRY_FILE}.`)) {
    return "is the store's registry file";
  }
  const stem = PART_SUFFIXES.reduce(
    (s, suffix) => (s.endsWith(suffix) ? s.slice(0, -suffix.length) : s),
    lower,
  );
  const ext = archiveExtension(stem);
  return ext === undefined ? undefined : `ends like an archive or a download of the store (${ext})`;
}

/** Who may be stored under a base name: the one registry image that maps to it, if any. */
export type Owner =
  | { kind: "image"; spec: ImageSpec }
  /** Several registry images map to it (all refused): no copy there can be attributed by name. */
  | { kind: "ambiguous" };

/** A base name's key for collisions: case-folded, as case-insensitive file systems see it. */
function foldKey(baseName: string): string {
  return baseName.toLowerCase();
}

function sameSpec(a: ImageSpec, b: ImageSpec): boolean {
  return a.name === b.name && a.version === b.version;
}

/**
 * The mapping of one registry to base names: every `NAME` and `NAME:VERSION` it can be pulled as,
 * and which base names two of them would share. Two specs whose base names are equal (ignoring
 * case: image `a-1` and `a:1`, `a-b:c` and `a:b-c`, `Demo` and `demo`) are both refused, as is a
 * base name {@link reservedNameProblem} rejects; every other spec maps to a base name of its own.
 * Refusals are per spec: the rest of the registry stays usable.
 */
export class StoreNames {
  /** Folded base name -> the registry's specs that map to it. */
  private readonly claims = new Map<string, ImageSpec[]>();

  private static readonly cache = new WeakMap<readonly ImageEntry[], StoreNames>();

  /** The mapping of `images`, made once per registry array (pulls of many images share it). */
  static of(images: readonly ImageEntry[]): StoreNames {
    let names = StoreNames.cache.get(images);
    if (!names) {
      names = new StoreNames(images);
      StoreNames.cache.set(images, names);
    }
    return names;
  }

  constructor(images: readonly ImageEntry[]) {
    const names = new Set<string>();
    for (const entry of images) {
      if (!names.has(entry.name)) {
        names.add(entry.name);
        this.claim({ name: entry.name });
      }
      this.claim({ name: entry.name, version: entry.version });
    }
  }

  private claim(spec: ImageSpec): void {
    const key = foldKey(imageBaseName(spec));
    const specs = this.claims.get(key);
    if (!specs) this.claims.set(key, [spec]);
    else if (!specs.some((s) => sameSpec(s, spec))) specs.push(spec);
  }

  /** Why `spec` cannot be stored (one line naming it and what it collides with), if it cannot. */
  problem(spec: ImageSpec): string | undefined {
    const baseName = imageBaseName(spec);
    const why = `image ${formatSpec(spec)} cannot be stored: its store name ${baseName}`;
    const reserved = reservedNameProblem(baseName);
    if (reserved !== undefined) return `${why} ${reserved}`;
    const others = (this.claims.get(foldKey(baseName)) ?? []).filter((s) => !sameSpec(s, spec));
    if (others.length === 0) return undefined;
    return `${why} is also that of image ${others.map(formatSpec).join(", image ")}`;
  }

  /**
   * The base name of `spec`.
   *
   * @throws AxError naming the image and what it collides with, when it cannot be stored.
   */
  baseName(spec: ImageSpec): string {
    const problem = this.problem(spec);
    if (problem !== undefined) {
      throw new AxError(problem, {
        hint:
          "the registry must give it a name of its own; the rest of the registry is not affected" +
          (spec.version === undefined ? " (NAME:VERSION may still work)" : ""),
      });
    }
    return imageBaseName(spec);
  }

  /**
   * Who may own the store entry `baseName` by name: the registry image that maps exactly to it,
   * `ambiguous` when several do, undefined when none does (or it is no image's name at all).
   */
  owner(baseName: string): Owner | undefined {
    if (reservedNameProblem(baseName) !== undefined) return undefined;
    const claimants = this.claims.get(foldKey(baseName)) ?? [];
    const exact = claimants.filter((s) => imageBaseName(s) === baseName);
    if (exact.length === 0) return undefined;
    return claimants.length === 1 ? { kind: "image", spec: exact[0]! } : { kind: "ambiguous" };
  }
}

/**
 * The directories of a store: `store` holds the registry, the bookkeeping (locks, stamps, records
 * of archives) and the archives; `trees` the extracted trees, with the staging trees they are
 * extracted into (on the same file system, so that a tree is renamed into place) and their trash
 * and records. They are one directory unless `-E` (`extract_dir`) names another for the trees.
 */
export interface StoreDirs {
  /** The store (or `-o DIR`): registry, bookkeeping, locks, archives. */
  store: string;
  /** Where trees are: the store itself, or the extract directory. */
  trees: string;
}

/** Where `path` leads when it exists (symbolic links resolved), else `path`. */
function realPath(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return path;
  }
}

/** True when `inner` is `outer` or below it (paths absolute). */
function within(inner: string, outer: string): boolean {
  const rel = relative(outer, inner);
  return rel === "" || (!rel.startsWith("..") && !isAbsolute(rel));
}

/**
 * The directories of the store `store` whose trees go to `extractDir` (default: the store).
 *
 * @throws UsageError when one is strictly inside the other: a tree (`<extract>/NAME`) could then be
 *   the store, or the extract directory a tree of the store (`<store>/NAME`, when used without -E).
 */
export function storeDirs(store: string, extractDir?: string): StoreDirs {
  const dir = resolve(store);
  if (extractDir === undefined) return { store: dir, trees: dir };
  const trees = resolve(extractDir);
  // Symbolic links too: compared where they lead, when they exist.
  const [realDir, realTrees] = [dir, trees].map(realPath) as [string, string];
  if (realTrees === realDir) return { store: dir, trees: dir };
  if (within(realTrees, realDir) || within(realDir, realTrees)) {
    const [inner, outer] = within(realTrees, realDir)
      ? [trees, "the store"]
      : [dir, "the extract directory"];
    throw new UsageError(
      `the extract directory ${trees} and the store ${dir} are nested (${inner} is inside ${outer})`,
      {
        hint: "give -E a directory outside the store (or the store itself), e.g. a sibling of it",
      },
    );
  }
  return { store: dir, trees };
}

/** Paths of one image in a store directory. */
export interface ImagePaths {
  /** The directory holding the archive (and the image's lock): the store or `-o DIR`. */
  dir: string;
  /** The directory holding the tree: {@link ImagePaths.dir}, or the extract directory. */
  treeDir: string;
  /** `<name>[-<version>]`. */
  baseName: string;
  /** The archive file. */
  archive: string;
  /** `<archive>.part` while downloading. */
  part: string;
  /** The resume metadata of `part` (URL, validator, size). */
  partMeta: string;
  /** The extracted tree. */
  tree: string;
  /** The marker file inside the tree. */
  marker: string;
}

/**
 * Where an image pulled as `spec` (with an archive at `url`) lives in the directories `dirs`.
 *
 * @throws AxError when the base name is one the store keeps for itself
 *   ({@link reservedNameProblem}); collisions between images are {@link StoreNames}' to check.
 */
export function imagePaths(
  dirs: StoreDirs,
  spec: ImageSpec,
  url: string,
  title?: string,
): ImagePaths {
  const baseName = new StoreNames([]).baseName(spec);
  const archive = join(dirs.store, baseName + archiveExtensionFor(url, title));
  const tree = treePath(dirs.trees, baseName);
  const part = archive + PART_SUFFIX;
  return {
    dir: dirs.store,
    treeDir: dirs.trees,
    baseName,
    archive,
    part,
    partMeta: partMetaPath(part),
    tree,
    marker: markerPath(tree),
  };
}

/** The extracted tree of the base name `baseName` in `dir`. */
export function treePath(dir: string, baseName: string): string {
  return join(dir, baseName);
}

/** The resume metadata of the download in progress `part`: removed together with it. */
export function partMetaPath(part: string): string {
  return part + PART_META_SUFFIX;
}

/** The marker inside the extracted tree `tree`. */
export function markerPath(tree: string): string {
  return join(tree, MARKER_FILE);
}

/**
 * The file named like the image `name` at the top of its tree `tree`: what a single-file archive
 * (tgosimages' `rootfs-aarch64-alpine.img`, an initramfs, a disk image) extracts to, and what
 * axbuild's pull of such a rootfs returns.
 */
export function imageFilePath(tree: string, name: string): string {
  return join(tree, name);
}

/** Every file name an archive of `baseName` may have, one per extension. */
export function archiveNames(baseName: string): string[] {
  return ARCHIVE_EXTENSIONS.map((ext) => baseName + ext);
}

/** Every file name an archive of `baseName` may have, with its download in progress. */
export function archiveFileNames(baseName: string): string[] {
  return archiveNames(baseName).flatMap((archive) => [
    archive,
    ...PART_SUFFIXES.map((suffix) => archive + suffix),
  ]);
}

/**
 * Every path the image files of `baseName` may have in `dirs`: its archive under each extension
 * with its download in progress (`.part`, resume metadata), and its tree.
 */
export function storedPaths(dirs: StoreDirs, baseName: string): { files: string[]; tree: string } {
  const files = archiveFileNames(baseName).map((f) => join(dirs.store, f));
  return { files, tree: treePath(dirs.trees, baseName) };
}

/**
 * What a file name in a store directory is: an image's archive or one of its downloads in
 * progress (`.part` and its resume metadata), with its base name; undefined for anything else
 * (the registry, bookkeeping, a user's file, or a name no image may have).
 */
export function storeFileKind(
  fileName: string,
): { kind: "archive" | "part"; baseName: string } | undefined {
  const suffix = PART_SUFFIXES.find((s) => fileName.endsWith(s));
  const archive = suffix === undefined ? fileName : fileName.slice(0, -suffix.length);
  const ext = ARCHIVE_EXTENSIONS.find((e) => archive.endsWith(e) && archive.length > e.length);
  if (ext === undefined) return undefined;
  const baseName = archive.slice(0, -ext.length);
  if (reservedNameProblem(baseName) !== undefined) return undefined;
  return { kind: suffix === undefined ? "archive" : "part", baseName };
}

/** A staging tree's name: `<base>.<pid>.<8 hex digits>`, unique to one extraction. */
const STAGING_NAME = /^(.+)\.\d+\.[0-9a-f]{8}$/;

/** The name of a new staging tree (or trash entry) for `baseName`, made unique by `token`. */
function stagingName(baseName: string, token: string): string {
  return `${baseName}.${process.pid}.${token}`;
}

/** A new staging tree of `baseName` in `dir` (`token`: 8 hex digits making it unique). */
export function stagingPath(dir: string, baseName: string, token: string): string {
  return join(bookkeeping(dir).staging, stagingName(baseName, token));
}

/** Where the tree or file `path` of `dir` goes to be deleted (`token` as for staging). */
export function trashPath(dir: string, path: string, token: string): string {
  return join(bookkeeping(dir).trash, stagingName(basename(path), token));
}

/** The base name a staging tree belongs to, or undefined when `name` is not a staging tree's. */
export function stagingBaseName(name: string): string | undefined {
  return STAGING_NAME.exec(name)?.[1];
}

/** A temporary entry in an output directory: `.<base>.<pid>.<8 hex digits>.tmp`. */
const OUTPUT_TEMP_NAME = /^\.(.+)\.(\d+)\.[0-9a-f]{8}\.tmp$/;

/**
 * A temporary entry of `baseName` in an output directory (`pull -o DIR`), which has no
 * bookkeeping of its own: a staging tree, an old tree on its way out, an archive being copied.
 * Hidden, beside the tree (so that renames stay on one file system), and named for its process.
 */
export function outputTempPath(dir: string, baseName: string, token: string): string {
  return join(dir, `.${stagingName(baseName, token)}.tmp`);
}

/** The pid that made the output temporary entry `name` of `baseName`; undefined for other names. */
export function outputTempPid(name: string, baseName: string): number | undefined {
  const match = OUTPUT_TEMP_NAME.exec(name);
  return match?.[1] === baseName ? Number(match[2]) : undefined;
}

/** Bookkeeping paths below `<dir>/.axvisor-image/`. */
export function bookkeeping(dir: string): {
  root: string;
  locks: string;
  staging: string;
  trash: string;
  stamps: string;
  pulled: string;
  registryCache: string;
  imagesCache: string;
  fallbackMark: string;
  syncSource: string;
  syncTrust: string;
  provenance: string;
  registryCopies: string;
  signatures: string;
  uploads: string;
} {
  const root = join(dir, BOOKKEEPING_DIR);
  return {
    root,
    locks: join(root, "locks"),
    staging: join(root, "staging"),
    trash: join(root, "trash"),
    stamps: join(root, "verified"),
    pulled: join(root, "pulled"),
    registryCache: join(root, "registry-cache"),
    imagesCache: join(root, "images.json"),
    fallbackMark: join(root, "from-fallback-registry"),
    syncSource: join(root, "synced-from"),
    syncTrust: join(root, "synced-trust"),
    provenance: join(root, "provenance.json"),
    registryCopies: join(root, "registries"),
    signatures: join(root, "signatures.json"),
    uploads: join(root, "uploads"),
  };
}

/**
 * Names of upload session files: the sha256 of the repository and the blob's digest; dotted, with
 * a random suffix, the temporary copy of one that a kill cut while it was written (replaceFile).
 */
const UPLOAD_SESSION_NAME = /^(?:[0-9a-f]{64}\.json|\.[0-9a-f]{64}\.json\.[0-9a-f]{12}\.tmp)$/;

/**
 * Where the session of an upload of the blob `digest` to the OCI repository `repository`
 * (`host/repository`) is saved, so that a cut upload goes on (`mirror --to oci://`).
 */
export function uploadSessionPath(store: string, repository: string, digest: string): string {
  const key = createHash("sha256").update(`${repository} ${digest}`).digest("hex");
  return join(bookkeeping(store).uploads, `${key}.json`);
}

/** True for the name of a file {@link uploadSessionPath} makes (or of its temporary copy). */
export function isUploadSessionName(name: string): boolean {
  return UPLOAD_SESSION_NAME.test(name);
}

/**
 * The last good copy of the registry `registry` (a built-in name, or a URL or path as configured):
 * named by the sha256 of that name, which the copy records too.
 */
export function registryCopyPath(store: string, registry: string): string {
  const id = createHash("sha256").update(registry).digest("hex").slice(0, 32);
  return join(bookkeeping(store).registryCopies, `${id}.json`);
}

/** The store's merged registry, and the unix time of its last sync. */
export function registryFiles(store: string): { registry: string; lastSync: string } {
  return { registry: join(store, REGISTRY_FILE), lastSync: join(store, LAST_SYNC_FILE) };
}

/** The file in a lock directory that says who holds it. */
export const OWNER_FILE = "owner";

/** The lock `name` of `dir` (a directory, made with mkdir) and its owner file in it. */
export function lockPaths(dir: string, name: string): { lock: string; owner: string } {
  const lock = join(bookkeeping(dir).locks, `${name}.lock`);
  return { lock, owner: join(lock, OWNER_FILE) };
}

/** The verified-archive stamp of `archive` (its size, mtime, inode and sha256). */
export function stampPath(archive: string): string {
  return join(bookkeeping(dirname(archive)).stamps, `${basename(archive)}.json`);
}

/** The pulled-as record of the archive or tree `item`. */
export function recordPath(item: string): string {
  return join(bookkeeping(dirname(item)).pulled, `${basename(item)}.json`);
}
