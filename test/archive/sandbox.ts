/**
 * Test fixtures for the extractor: a temp directory holding the staging dir (`dest`) next to an
 * `outside` dir with a victim file, a snapshot of everything outside `dest`, and helpers that feed
 * archives through a real ArchiveExtractor.
 */

import assert from "node:assert/strict";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { gzipSync } from "node:zlib";
import { AxError } from "../../src/errors.js";
import {
  ArchiveExtractor,
  type ExtractOptions,
  type ExtractStats,
} from "../../src/archive/extract.js";

/** A temp dir with `dest` (not created: the extractor makes it) and `outside/victim.txt`. */
export interface Sandbox {
  root: string;
  dest: string;
  outside: string;
  victim: string;
  /** Removes everything. */
  cleanup(): Promise<void>;
}

/** Creates a {@link Sandbox}. */
export async function sandbox(): Promise<Sandbox> {
  const root = await fs.mkdtemp(path.join(os.tmpdir(), "axvisor-archive-"));
  const outside = path.join(root, "outside");
  await fs.mkdir(outside);
  const victim = path.join(outside, "victim.txt");
  await fs.writeFile(victim, "original\n");
  return {
    root,
    dest: path.join(root, "dest"),
    outside,
    victim,
    cleanup: () => fs.rm(root, { recursive: true, force: true }),
  };
}

/** Every path under `dir` (except `skip`) with its type, content or link target, and mode. */
export async function snapshot(dir: string, skip: string): Promise<Map<string, string>> {
  const result = new Map<string, string>();
  const walk = async (current: string): Promise<void> => {
    for (const name of (await fs.readdir(current)).sort()) {
      const full = path.join(current, name);
      if (full === skip) continue;
      const stat = await fs.lstat(full);
      const key = path.relative(dir, full);
      if (stat.isDirectory()) {
        result.set(key, `dir ${stat.mode}`);
        await walk(full);
      } else if (stat.isSymbolicLink()) {
        result.set(key, `link ${await fs.readlink(full)}`);
      } else {
        result.set(key, `file ${stat.mode} ${await fs.readFile(full, "latin1")}`);
      }
    }
  };
  await walk(dir);
  return result;
}

/** How a test archive is encoded before extraction: hostile tests run each variant. */
export const ENCODINGS: { name: string; encode: (tar: Buffer) => Buffer }[] = [
  { name: "plain", encode: (tar) => tar },
  { name: "gzip", encode: (tar) => gzipSync(tar) },
];

/** Feeds `archive` to a new ArchiveExtractor in chunks of `chunkSize` bytes. */
export async function extractBuffer(
  archive: Buffer,
  dest: string,
  options: ExtractOptions = {},
  chunkSize = 64 * 1024,
): Promise<ExtractStats> {
  const extractor = new ArchiveExtractor(dest, options);
  try {
    for (let offset = 0; offset < archive.length; offset += chunkSize) {
      await extractor.write(archive.subarray(offset, offset + chunkSize));
    }
    return await extractor.end();
  } catch (err) {
    await extractor.abort();
    throw err;
  }
}

/**
 * Extracts `archive` (or what it builds for the sandbox) in a fresh sandbox and checks that it is refused with an AxError naming
 * `member` (or a name starting with it; no check without one), and that nothing outside `dest`
 * changed. Returns the
 * error message.
 */
export async function expectRefused(
  archive: Buffer | ((sb: Sandbox) => Buffer),
  member?: string,
): Promise<string> {
  const sb = await sandbox();
  try {
    const before = await snapshot(sb.root, sb.dest);
    const bytes = typeof archive === "function" ? archive(sb) : archive;
    let message = "";
    await assert.rejects(extractBuffer(bytes, sb.dest), (err: unknown) => {
      assert.ok(err instanceof AxError, `expected an AxError, got ${String(err)}`);
      message = err.message;
      return true;
    });
    // Without the closing quote, so that a long name may be given by its start.
    if (member !== undefined) {
      assert.ok(
        message.includes(JSON.stringify(member).slice(0, -1)),
        `error should name ${JSON.stringify(member)}: ${message}`,
      );
    }
    assert.deepEqual(await snapshot(sb.root, sb.dest), before, "something changed outside dest");
    return message;
  } finally {
    await sb.cleanup();
  }
}

/**
 * For property tests: runs `body` with one sandbox and a `check` that extracts an archive into a
 * new destination there and verifies what holds for any archive: it succeeds or fails with a
 * one-line AxError, nothing outside the destination changes, nothing is created beside it.
 */
export async function withConfinementCheck(
  body: (
    check: (archive: Buffer, chunkSize?: number) => Promise<void>,
    sb: Sandbox,
  ) => Promise<void>,
): Promise<void> {
  const sb = await sandbox();
  try {
    const outsideBefore = await snapshot(sb.outside, "");
    let runs = 0;
    await body(async (archive, chunkSize) => {
      const dest = path.join(sb.root, `dest-${++runs}`);
      try {
        await extractBuffer(archive, dest, {}, chunkSize);
      } catch (err) {
        assert.ok(err instanceof AxError, `not an AxError: ${String(err)}`);
        assert.doesNotMatch(err.message, /\n/, "one-line message");
      }
      assert.deepEqual(await snapshot(sb.outside, ""), outsideBefore, "outside unchanged");
      const top = (await fs.readdir(sb.root)).filter((n) => !n.startsWith("dest-"));
      assert.deepEqual(top.sort(), ["outside"], "nothing created beside the destination");
      await fs.rm(dest, { recursive: true, force: true });
    }, sb);
  } finally {
    await sb.cleanup();
  }
}

/** Extracts `archive` in a fresh sandbox, runs `check` on the result, cleans up. */
export async function withExtracted(
  archive: Buffer,
  check: (dest: string, stats: ExtractStats, sb: Sandbox) => Promise<void>,
  options: ExtractOptions = {},
): Promise<void> {
  const sb = await sandbox();
  try {
    const stats = await extractBuffer(archive, sb.dest, options);
    await check(sb.dest, stats, sb);
  } finally {
    await sb.cleanup();
  }
}
