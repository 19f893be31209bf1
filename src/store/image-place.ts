/**
 * One image's place in a store, as one object a pull asks: its paths (archive, `.part` and its
 * metadata, tree, marker), what is there (the tree's marker, the archive's verified digest), and
 * the steps that change it, each atomic (staging trees, installing the download and the tree,
 * removing a bad archive, pulled-as records, the image's lock). With an output directory
 * (`pull -o DIR`), the store still holds the download, the archive and every piece of
 * bookkeeping; the tree, and a copy of the archive, go to DIR, and nothing else does.
 */
import { access, rename, rm, stat } from "node:fs/promises";
import { basename, join } from "node:path";
import { archiveExtension, extensionOf, type ArchiveNaming } from "../archive/extensions.js";
import { fsError } from "../errors.js";
import { formatSpec } from "../registry/resolve.js";
import type { ImageEntry, ImageSpec } from "../registry/types.js";
import {
  exportArchive,
  installTree,
  newStagingPath,
  readMarker,
  regularFileAt,
  removeArchive,
  removeStaleStaging,
  type TreeHome,
} from "./copies.js";
import {
  archiveNames,
  imageBaseName,
  imageFilePath,
  imagePaths,
  markerPath,
  treePath,
  type ImagePaths,
  type StoreDirs,
} from "./layout.js";
import { withLock, type HeldLock, type LockOptions } from "./lock.js";
import { pulledAs, writePulledAs } from "./records.js";
import { archiveDigest, writeStamp } from "./stamps.js";

/** Options of {@link placeImage}. */
export interface PlaceOptions {
  /** The sha256 of the entry being pulled (a tree whose marker has it needs no archive name). */
  sha256: string;
  /**
   * For a URL that does not name the archive (an `oci://` reference): what its source says of its
   * name (an OCI layer's title, the compression its media type or first bytes show), asked only
   * when neither an archive a previous pull left nor a matching tree decides it.
   */
  archiveNaming?: () => Promise<ArchiveNaming | undefined>;
  /** `pull -o DIR`: the tree and a copy of the archive go there (see the module comment). */
  outputDir?: string;
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

/**
 * The file name that gives the archive of `baseName` its extension when the URL does not: the
 * archive a previous pull left in the store keeps its name; a tree (in `treeDir`: the output
 * directory, else the trees' directory) whose marker matches needs no name (the default one);
 * otherwise the name its source gives (see {@link namedArchive}).
 */
async function archiveName(
  dirs: StoreDirs,
  treeDir: string,
  baseName: string,
  sha256: string,
  archiveNaming: () => Promise<ArchiveNaming | undefined>,
): Promise<string | undefined> {
  for (const archive of archiveNames(baseName)) {
    if (await exists(join(dirs.store, archive))) return archive;
  }
  if ((await readMarker(treePath(treeDir, baseName))) === sha256) return undefined;
  return namedArchive(baseName, await archiveNaming());
}

/**
 * The archive's file name from what its source says: the publisher's title when it ends like an
 * archive (`rootfs.img.tar.xz`), else the extension of the compression the source saw
 * (`<base>.tar.zst`); undefined (the default, `.tar.gz`) when the source says neither.
 */
function namedArchive(baseName: string, naming: ArchiveNaming | undefined): string | undefined {
  const { title, compression } = naming ?? {};
  if (title !== undefined && archiveExtension(title) !== undefined) return title;
  return compression === undefined ? undefined : baseName + extensionOf(compression);
}

/**
 * Where the image pulled as `spec`, with its archive at `url`, lives in the directories `dirs`
 * (its tree in `options.outputDir` when given).
 *
 * @throws AxError when its store name is one the store keeps for itself.
 */
export async function placeImage(
  dirs: StoreDirs,
  spec: ImageSpec,
  url: string,
  options: PlaceOptions,
): Promise<ImagePlace> {
  const { sha256, archiveNaming, outputDir } = options;
  const title =
    archiveNaming === undefined
      ? undefined
      : await archiveName(
          dirs,
          outputDir ?? dirs.trees,
          imageBaseName(spec),
          sha256,
          archiveNaming,
        );
  return new ImagePlace(spec, imagePaths(dirs, spec, url, title), outputDir);
}

/** See the module comment. */
export class ImagePlace implements ImagePaths {
  /** What the image is pulled as, `NAME` or `NAME:VERSION` (its records say so). */
  readonly image: string;
  /** The image's name (what a single-file archive's file is named). */
  readonly name: string;
  /** The store. */
  readonly dir: string;
  /** Where the tree lives: the trees' directory of the store, or the output directory. */
  readonly treeDir: string;
  readonly baseName: string;
  /** The archive in the store. */
  readonly archive: string;
  readonly part: string;
  readonly partMeta: string;
  /** The extracted tree: in the store, or in the output directory. */
  readonly tree: string;
  readonly marker: string;
  /** The archive as the pull hands it over: {@link archive}, or its copy in the output directory. */
  readonly delivered: string;
  /** The store's directory of trees (where a pull without `-o` extracts). */
  readonly #storeTrees: string;
  readonly #home: TreeHome;

  constructor(spec: ImageSpec, paths: ImagePaths, outputDir?: string) {
    this.image = formatSpec(spec);
    this.name = spec.name;
    ({
      dir: this.dir,
      treeDir: this.treeDir,
      baseName: this.baseName,
      archive: this.archive,
      part: this.part,
      partMeta: this.partMeta,
      tree: this.tree,
      marker: this.marker,
    } = paths);
    this.delivered = this.archive;
    this.#storeTrees = this.treeDir;
    this.#home = "store";
    if (outputDir !== undefined) {
      this.treeDir = outputDir;
      this.#home = "output";
      this.tree = treePath(outputDir, this.baseName);
      this.marker = markerPath(this.tree);
      this.delivered = join(outputDir, basename(this.archive));
    }
  }

  /** Runs `fn` holding the image's cross-process lock (see `withLock`). */
  withLock<T>(fn: (lock: HeldLock) => Promise<T>, options: LockOptions = {}): Promise<T> {
    return withLock(this.dir, this.baseName, fn, options);
  }

  /** The sha256 the tree's marker records; undefined without a tree or marker. */
  treeMarker(): Promise<string | undefined> {
    return readMarker(this.tree);
  }

  /**
   * The file named like the image at the top of its tree (what a single-file archive extracts
   * to), when the tree has one: a regular file, never a link an archive put there.
   */
  treeFile(): Promise<string | undefined> {
    return regularFileAt(imageFilePath(this.tree, this.name));
  }

  /**
   * The archive's sha256, from its stamp when the file is unchanged since it was hashed (unless
   * `force`), else by hashing it; undefined when there is no archive.
   */
  archiveDigest(options: { force?: boolean; onBytes?: (n: number) => void } = {}) {
    return archiveDigest(this.archive, options);
  }

  /**
   * Records that the store's archive or tree holds `entry`, pulled as {@link ImagePlace.image}
   * (a tree in an output directory gets no record: the store keeps none of it).
   */
  async recordPulled(copy: "archive" | "tree", entry: ImageEntry): Promise<void> {
    if (copy === "tree" && this.#home === "output") return;
    await writePulledAs(copy === "archive" ? this.archive : this.tree, pulledAs(this.image, entry));
  }

  /** Hands the store's verified archive over as {@link delivered} (a link or a copy in `-o DIR`). */
  async deliverArchive(): Promise<void> {
    if (this.delivered !== this.archive) {
      await exportArchive(this.archive, this.delivered, this.baseName);
    }
  }

  /** Removes an archive that does not match the registry, with its stamp and record. */
  discardArchive(): Promise<void> {
    return removeArchive(this.archive);
  }

  /** Deletes staging trees killed processes left; call it holding the lock. */
  async removeStaleStaging(): Promise<void> {
    await removeStaleStaging(this.#storeTrees, this.baseName);
    if (this.#home === "output") await removeStaleStaging(this.treeDir, this.baseName, "output");
  }

  /** A fresh staging tree's path (not created), for extracting into. */
  newStaging(): Promise<string> {
    return newStagingPath(this.treeDir, this.baseName, this.#home);
  }

  /**
   * Puts a complete, verified download in place: the `.part` becomes the archive, its metadata
   * goes, and the archive is stamped with its `sha256`.
   */
  async installArchive(sha256: string): Promise<void> {
    try {
      await rename(this.part, this.archive);
    } catch (err) {
      throw fsError(err, "move the download to", this.archive);
    }
    await rm(this.partMeta, { force: true });
    await writeStamp(this.archive, sha256);
  }

  /** Puts a fully extracted staging tree in place as the tree, its marker saying `sha256`. */
  installTree(staging: string, sha256: string): Promise<void> {
    return installTree(this.treeDir, staging, this.tree, sha256, this.#home);
  }

  /** Bytes in the `.part` (0 when there is none). */
  partSize(): Promise<number> {
    return stat(this.part).then(
      (st) => st.size,
      () => 0,
    );
  }

  /** Deletes the `.part` and its metadata: their bytes are of no use for a resume. */
  async removePart(): Promise<void> {
    await Promise.all([rm(this.part, { force: true }), rm(this.partMeta, { force: true })]);
  }
}
