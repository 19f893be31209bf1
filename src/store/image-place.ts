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
import { fsError } from "../errors.js";
import { formatSpec } from "../registry/resolve.js";
import type { ImageEntry, ImageSpec } from "../registry/types.js";
import {
  exportArchive,
  installTree,
  newStagingPath,
  readMarker,
  removeArchive,
  removeStaleStaging,
  type TreeHome,
} from "./copies.js";
import {
  archiveNames,
  imageBaseName,
  imagePaths,
  markerPath,
  treePath,
  type ImagePaths,
} from "./layout.js";
import { withLock, type HeldLock, type LockOptions } from "./lock.js";
import { pulledAs, writePulledAs } from "./records.js";
import { archiveDigest, writeStamp } from "./stamps.js";

/** Options of {@link placeImage}. */
export interface PlaceOptions {
  /** The sha256 of the entry being pulled (a tree whose marker has it needs no archive name). */
  sha256: string;
  /**
   * For a URL that does not name the archive (an `oci://` reference): the file name its source
   * gives it (an OCI layer's title), asked only when neither an archive a previous pull left nor
   * a matching tree decides it.
   */
  archiveTitle?: () => Promise<string | undefined>;
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
 * archive a previous pull left in `dir` keeps its name; a tree (in `treeDir`) whose marker
 * matches needs no name (the default one); otherwise the title the source gives.
 */
async function archiveName(
  dir: string,
  treeDir: string,
  baseName: string,
  sha256: string,
  archiveTitle: () => Promise<string | undefined>,
): Promise<string | undefined> {
  for (const archive of archiveNames(baseName)) {
    if (await exists(join(dir, archive))) return archive;
  }
  if ((await readMarker(treePath(treeDir, baseName))) === sha256) return undefined;
  return archiveTitle();
}

/**
 * Where the image pulled as `spec`, with its archive at `url`, lives in the store `dir` (its
 * tree in `options.outputDir` when given).
 *
 * @throws AxError when its store name is one the store keeps for itself.
 */
export async function placeImage(
  dir: string,
  spec: ImageSpec,
  url: string,
  options: PlaceOptions,
): Promise<ImagePlace> {
  const { sha256, archiveTitle, outputDir } = options;
  const treeDir = outputDir ?? dir;
  const title =
    archiveTitle === undefined
      ? undefined
      : await archiveName(dir, treeDir, imageBaseName(spec), sha256, archiveTitle);
  return new ImagePlace(spec, imagePaths(dir, spec, url, title), outputDir);
}

/** See the module comment. */
export class ImagePlace implements ImagePaths {
  /** What the image is pulled as, `NAME` or `NAME:VERSION` (its records say so). */
  readonly image: string;
  /** The store. */
  readonly dir: string;
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
  /** Where the tree lives: {@link dir}, or the output directory. */
  readonly #treeDir: string;
  readonly #home: TreeHome;

  constructor(spec: ImageSpec, paths: ImagePaths, outputDir?: string) {
    this.image = formatSpec(spec);
    ({
      dir: this.dir,
      baseName: this.baseName,
      archive: this.archive,
      part: this.part,
      partMeta: this.partMeta,
      tree: this.tree,
      marker: this.marker,
    } = paths);
    this.delivered = this.archive;
    this.#treeDir = this.dir;
    this.#home = "store";
    if (outputDir !== undefined) {
      this.#treeDir = outputDir;
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
    await removeStaleStaging(this.dir, this.baseName);
    if (this.#home === "output") await removeStaleStaging(this.#treeDir, this.baseName, "output");
  }

  /** A fresh staging tree's path (not created), for extracting into. */
  newStaging(): Promise<string> {
    return newStagingPath(this.#treeDir, this.baseName, this.#home);
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
    return installTree(this.#treeDir, staging, this.tree, sha256, this.#home);
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
