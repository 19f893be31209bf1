/**
 * Comparing an extracted tree with the one GNU tar extracts from the same archive: names (as
 * bytes), types, permission bits (directories always get owner rwx from us, so that the tree can
 * be removed: compared with that bit set), symbolic link targets, hard links, file contents, and
 * holes (where GNU tar's file is sparse, ours must be too, with no more blocks allocated).
 */

import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import fs from "node:fs";

/** One entry of a tree, keyed by its relative path (bytes shown as latin1). */
interface Entry {
  type: "dir" | "file" | "symlink" | "other";
  mode: number;
  size: number;
  blocks: number;
  sha256?: string;
  target?: string;
  /** The other paths of the tree that are hard links to this file, sorted. */
  links?: string[];
}

/** Every entry under `root` (which is not listed itself). */
export function describeTree(root: string): Map<string, Entry> {
  const entries = new Map<string, Entry>();
  const inodes = new Map<number, string[]>();
  const walk = (dir: Buffer, prefix: string): void => {
    for (const name of fs.readdirSync(dir, { encoding: "buffer" })) {
      const full = Buffer.concat([dir, Buffer.from("/"), name]);
      const key = prefix + name.toString("latin1");
      const stat = fs.lstatSync(full);
      const entry: Entry = {
        type: stat.isDirectory()
          ? "dir"
          : stat.isFile()
            ? "file"
            : stat.isSymbolicLink()
              ? "symlink"
              : "other",
        mode: (stat.mode & 0o7777) | (stat.isDirectory() ? 0o700 : 0),
        size: stat.size,
        blocks: stat.blocks,
      };
      if (entry.type === "file") {
        entry.sha256 = createHash("sha256").update(fs.readFileSync(full)).digest("hex");
        inodes.set(stat.ino, [...(inodes.get(stat.ino) ?? []), key]);
      }
      if (entry.type === "symlink")
        entry.target = fs.readlinkSync(full, "buffer").toString("latin1");
      entries.set(key, entry);
      if (entry.type === "dir") walk(full, `${key}/`);
    }
  };
  walk(Buffer.from(root), "");
  for (const group of inodes.values()) {
    for (const key of group) {
      const entry = entries.get(key) as Entry;
      entry.links = group.filter((other) => other !== key).sort();
    }
  }
  return entries;
}

/** How `ours` differs from `gnu` (empty when they agree), one line per difference. */
export function treeDifferences(ours: string, gnu: string): string[] {
  const a = describeTree(ours);
  const b = describeTree(gnu);
  const problems: string[] = [];
  for (const key of new Set([...a.keys(), ...b.keys()])) {
    const mine = a.get(key);
    const theirs = b.get(key);
    if (!mine || !theirs) {
      problems.push(`${JSON.stringify(key)}: only in ${mine ? "ours" : "GNU tar's"}`);
      continue;
    }
    const { blocks: myBlocks, ...myFields } = mine;
    const { blocks: theirBlocks, ...theirFields } = theirs;
    if (JSON.stringify(myFields) !== JSON.stringify(theirFields)) {
      problems.push(
        `${JSON.stringify(key)}: ours ${JSON.stringify(myFields)}, GNU tar's ${JSON.stringify(theirFields)}`,
      );
    }
    const sparse = (blocks: number) => blocks * 512 < mine.size;
    if (
      mine.type === "file" &&
      sparse(theirBlocks) &&
      (!sparse(myBlocks) || myBlocks > theirBlocks)
    ) {
      problems.push(`${JSON.stringify(key)}: ${myBlocks} blocks allocated, GNU tar ${theirBlocks}`);
    }
  }
  return problems;
}

/** Extracts `archive` with GNU tar into the new directory `dest` (modes kept, owners not). */
export function gnuExtract(
  archive: string,
  dest: string,
): { status: number | null; stderr: string } {
  fs.mkdirSync(dest, { recursive: true });
  const run = spawnSync("tar", ["-xf", archive, "-C", dest, "-p", "--no-same-owner"], {
    env: { ...process.env, LC_ALL: "C" },
  });
  return { status: run.status, stderr: run.stderr.toString() };
}

/** True when `command` can be run (`--version` or `--help` succeeds). */
export function haveTool(command: string): boolean {
  const version = spawnSync(command, ["--version"]);
  return version.status === 0 || spawnSync(command, ["--help"]).status === 0;
}
