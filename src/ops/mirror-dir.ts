/**
 * `mirror --to DIR`: the archives under `DIR/<version>/<name><ext>` (a release's file names, one
 * folder per version, as GitHub serves them), each written under a temporary name and renamed
 * into place once whole (never over a file that is there already and is not that archive), and
 * URLs relative to the registry file, so that the directory can be served by any static web
 * server or synced to object storage as it is.
 */
import { copyFile, lstat, mkdir, rename, rm, stat } from "node:fs/promises";
import { basename, dirname, join, relative, sep } from "node:path";
import { randomBytes } from "node:crypto";
import { ARCHIVE_EXTENSIONS, archiveExtension } from "../archive/extensions.js";
import { AxError, fsError, hasCode } from "../errors.js";
import type { ImageEntry } from "../registry/types.js";
import { hashFile } from "../store/stamps.js";
import type { MirrorTarget } from "./mirror.js";

/** The mirror target that is the directory `dir`; URLs are relative to `registryFile`'s folder. */
export function directoryTarget(dir: string, registryFile: string): MirrorTarget {
  const pathOf = (entry: ImageEntry, ext: string) =>
    join(dir, entry.version, `${entry.name}${ext}`);
  const urlOf = (path: string) =>
    relative(dirname(registryFile), path).split(sep).map(encodeURIComponent).join("/");
  return {
    async prepare() {
      try {
        await mkdir(dir, { recursive: true });
        if (!(await stat(dir)).isDirectory()) throw new AxError(`${dir} is not a directory`);
      } catch (err) {
        if (err instanceof AxError) throw err;
        if (hasCode(err, "EEXIST") || hasCode(err, "ENOTDIR")) {
          throw new AxError(`cannot mirror to ${dir}: it is not a directory`);
        }
        throw fsError(err, "create", dir);
      }
    },
    async present(entry) {
      for (const ext of ARCHIVE_EXTENSIONS) {
        const path = pathOf(entry, ext);
        const isFile = await stat(path).then(
          (info) => info.isFile(),
          () => false,
        );
        if (isFile && (await hashFile(path)) === entry.sha256) return urlOf(path);
      }
      return undefined;
    },
    async put(entry, archive) {
      const path = pathOf(entry, archiveExtension(basename(archive)) ?? ".tar");
      // `present` found no copy of this archive: what is there is someone else's file.
      if (
        await lstat(path).then(
          () => true,
          () => false,
        )
      ) {
        throw new AxError(`${path} exists and is not this image's archive: not replaced`, {
          hint: "remove it (or mirror to another directory) if it may go",
        });
      }
      const temporary = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString("hex")}`);
      try {
        await mkdir(dirname(path), { recursive: true });
        await copyFile(archive, temporary);
        await rename(temporary, path);
      } catch (err) {
        await rm(temporary, { force: true });
        throw fsError(err, "write", path);
      }
      return urlOf(path);
    },
  };
}
