/**
 * The confined writer: creates directories, files and links under one root directory, and nowhere
 * else, whatever the archive says.
 *
 * The root starts empty and only this class writes into it, so an in-memory record of what it
 * created is the truth about the tree: no `stat` before each write, no `mkdir -p`. The rules:
 * - a path never passes through a symbolic link (nor through a name a case- or
 *   normalization-insensitive file system could take for one);
 * - a symbolic link is never replaced, written through or written under; a directory is never
 *   replaced; a regular file may be replaced (GNU tar does so), by unlinking it first;
 * - a hard link may only point at a regular file this archive created earlier;
 * - files are created with `O_EXCL | O_NOFOLLOW`, modes lose setuid/setgid/sticky, owners are
 *   never set.
 * Metadata and small-file calls are synchronous: each takes microseconds, and a threadpool round
 * trip costs more than the call itself.
 */

import fs from "node:fs";
import path from "node:path";
import { fsError, hasCode } from "../errors.js";
import { printable } from "../text.js";
import { foldName, fsPath, quoteName, refused } from "./member-path.js";

type Kind = "dir" | "file" | "symlink";

/** What an extraction wrote. */
export interface ExtractStats {
  /** Regular files and hard links. */
  files: number;
  /** Directories created. */
  directories: number;
  /** Symbolic links. */
  symlinks: number;
  /** Bytes of regular-file content written (logical sizes, holes included). */
  bytes: number;
}

const PERMISSIONS = 0o777;
const CREATE_FLAGS =
  fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW;

/** A regular file being written: its descriptor and what to set when it is complete. */
export interface OpenFile {
  /** The open descriptor (write-only). */
  fd: number;
  /** Absolute path, for messages. */
  path: string;
  /** Permission bits to end up with (setuid, setgid and sticky already dropped). */
  mode: number;
  /** Modification time to set, in seconds. */
  mtime: number;
}

/** Directories, files and links created under one root, with the checks described above. */
export class ConfinedTree {
  /** Counters of what was written. */
  readonly stats: ExtractStats = { files: 0, directories: 0, symlinks: 0, bytes: 0 };
  readonly #root: string;
  readonly #umask: number;
  /** Exact relative path (`a/b`) -> what is there. */
  readonly #kinds = new Map<string, Kind>();
  /** Folded relative path of each symbolic link -> its exact path. */
  readonly #links = new Map<string, string>();
  /** Mode and mtime of directory members, applied at the end (children change the mtime). */
  readonly #directoryMeta = new Map<string, { mode: number; mtime: number }>();

  /** `root` must be an existing, empty directory. */
  constructor(root: string) {
    this.#root = root;
    this.#umask = process.umask();
  }

  /** A directory member: created (with missing parents) now, mode and mtime set by finish(). */
  directory(member: string, parts: string[], mode: number, mtime: number): void {
    if (parts.length === 0) return; // `./`: the root itself
    const { key, existing } = this.#prepare(member, parts);
    if (existing === "file") throw refused(member, "would replace the file of the same name");
    if (existing === undefined) this.#mkdir(member, key);
    this.#directoryMeta.set(key, { mode, mtime });
  }

  /** Creates the regular file `parts` (replacing an earlier regular file) and opens it. */
  createFile(member: string, parts: string[], mode: number, mtime: number): OpenFile {
    const { key, abs } = this.#prepareLeaf(member, parts);
    const fileMode = mode & PERMISSIONS;
    try {
      const fd = fs.openSync(fsPath(abs), CREATE_FLAGS, fileMode);
      this.#kinds.set(key, "file");
      this.stats.files += 1;
      return { fd, path: abs, mode: fileMode, mtime };
    } catch (err) {
      throw this.#createError(err, member, abs);
    }
  }

  /** Sets the mode (when the umask changed it) and times of a complete file, and closes it. */
  closeFile(file: OpenFile, size: number): void {
    let failure: unknown;
    try {
      if (file.mode & this.#umask) fs.fchmodSync(file.fd, file.mode);
      fs.futimesSync(file.fd, file.mtime, file.mtime);
    } catch (err) {
      failure = err;
    }
    try {
      fs.closeSync(file.fd);
    } catch (err) {
      failure ??= err;
    }
    if (failure !== undefined) throw fsError(failure, "finish writing", printable(file.path));
    this.stats.bytes += size;
  }

  /** Closes a file whose writing failed (the caller deletes the whole tree). */
  discardFile(file: OpenFile): void {
    try {
      fs.closeSync(file.fd);
    } catch {
      // already failing: the first error is the one reported
    }
  }

  /** A symbolic link, created with its target exactly as written (absolute ones included). */
  symlink(member: string, parts: string[], target: string): void {
    const { key, abs, folded } = this.#prepareLeaf(member, parts);
    try {
      fs.symlinkSync(fsPath(target), fsPath(abs));
    } catch (err) {
      throw this.#createError(err, member, abs);
    }
    this.#kinds.set(key, "symlink");
    this.#links.set(folded, key);
    this.stats.symlinks += 1;
  }

  /** A hard link to `targetParts`, which must be a regular file this archive created earlier. */
  hardlink(member: string, parts: string[], target: string, targetParts: string[]): void {
    const targetKey = targetParts.join("/");
    this.#checkNoLink(member, targetParts, "hard link target");
    if (this.#kinds.get(targetKey) !== "file") {
      const shown = quoteName(target);
      throw refused(member, `hard link target ${shown} is not an earlier file of this archive`);
    }
    if (targetKey === parts.join("/")) return; // a link to itself: nothing to do
    const { key, abs } = this.#prepareLeaf(member, parts);
    try {
      fs.linkSync(fsPath(path.join(this.#root, targetKey)), fsPath(abs));
    } catch (err) {
      throw this.#createError(err, member, abs);
    }
    this.#kinds.set(key, "file");
    this.stats.files += 1;
  }

  /** Sets the modes (with owner rwx, so the tree stays removable) and mtimes of directories. */
  finish(): void {
    for (const [key, { mode, mtime }] of this.#directoryMeta) {
      const abs = path.join(this.#root, key);
      try {
        fs.chmodSync(fsPath(abs), (mode & PERMISSIONS) | 0o700);
        fs.lutimesSync(fsPath(abs), mtime, mtime);
      } catch (err) {
        throw fsError(err, "set the mode of directory", printable(abs));
      }
    }
  }

  /** Refuses `parts` when it, or one of its parents, folds to the name of a symbolic link. */
  #checkNoLink(member: string, parts: string[], role: string): string {
    let folded = "";
    for (let i = 0; i < parts.length; i++) {
      folded = i === 0 ? foldName(parts[0] ?? "") : `${folded}/${foldName(parts[i] ?? "")}`;
      const link = this.#links.get(folded);
      if (link !== undefined) {
        throw refused(
          member,
          i < parts.length - 1
            ? `${role} passes through the symbolic link ${quoteName(link)}`
            : `${role} is the symbolic link ${quoteName(link)}, never replaced or written through`,
        );
      }
    }
    return folded;
  }

  /**
   * Checks a member's path and creates its missing parent directories; returns its key, absolute
   * path, folded key and what the archive already put there.
   */
  #prepare(
    member: string,
    parts: string[],
  ): { key: string; abs: string; folded: string; existing: Kind | undefined } {
    const folded = this.#checkNoLink(member, parts, "path");
    let key = "";
    for (let i = 0; i < parts.length - 1; i++) {
      key = i === 0 ? (parts[0] ?? "") : `${key}/${parts[i] ?? ""}`;
      const kind = this.#kinds.get(key);
      if (kind === undefined) this.#mkdir(member, key);
      else if (kind !== "dir") throw refused(member, `${quoteName(key)} is not a directory`);
    }
    key = parts.join("/");
    return { key, abs: path.join(this.#root, key), folded, existing: this.#kinds.get(key) };
  }

  /** #prepare for a file or link: refuses to replace a directory, unlinks an earlier file. */
  #prepareLeaf(member: string, parts: string[]): { key: string; abs: string; folded: string } {
    if (parts.length === 0)
      throw refused(member, "not a directory, but names the target directory");
    const { key, abs, folded, existing } = this.#prepare(member, parts);
    if (existing === "dir") throw refused(member, "would replace the directory of the same name");
    if (existing === "file") {
      try {
        fs.unlinkSync(fsPath(abs));
      } catch (err) {
        throw fsError(err, "replace", printable(abs));
      }
      this.#kinds.delete(key);
      this.stats.files -= 1;
    }
    return { key, abs, folded };
  }

  #mkdir(member: string, key: string): void {
    const abs = path.join(this.#root, key);
    try {
      fs.mkdirSync(fsPath(abs), 0o755);
      this.stats.directories += 1;
    } catch (err) {
      // Another spelling of a directory we made, on a case- or normalization-insensitive system.
      if (!hasCode(err, "EEXIST") || !fs.lstatSync(fsPath(abs)).isDirectory()) {
        throw this.#createError(err, member, abs);
      }
    }
    this.#kinds.set(key, "dir");
  }

  #createError(err: unknown, member: string, abs: string): Error {
    if (hasCode(err, "EEXIST")) {
      return refused(
        member,
        "another member whose name differs only in case or Unicode form exists",
      );
    }
    return fsError(err, `extract archive member ${quoteName(member)} to`, printable(abs));
  }
}
