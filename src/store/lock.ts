/**
 * Cross-process locks of a store, one per image and one for `sync`: a directory made with
 * `mkdir` (atomic: one process wins), its owner record in it, its mtime refreshed while it is
 * held. See {@link withLock} for the stale-lock rules.
 */
import { readFileSync } from "node:fs";
import { mkdir, rm, stat, utimes, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { AxError, hasCode, throwIfAborted } from "../errors.js";
import { isNotWritable, storeError } from "./access.js";
import { OWNER_FILE, bookkeeping, lockPaths } from "./layout.js";
import { ownerRecord, ownerState, parseOwner, type LockOwner } from "./lock-owner.js";
import { readOptionalText } from "./optional-file.js";

/** An owner record is a line of JSON; anything bigger is not one. */
const MAX_OWNER_BYTES = 64 * 1024;

/** A held lock; {@link HeldLock.assertHeld} fails if another process took it over meanwhile. */
export interface HeldLock {
  /** Throws when the lock was lost (it went stale and another process took it over). */
  assertHeld(): void;
}

/** Options of {@link withLock}. */
export interface LockOptions {
  /** Called once when the lock is held by another process and we start waiting. */
  onWait?: () => void;
  signal?: AbortSignal;
  /**
   * A lock whose holder cannot be checked (another host, another container) and that has not
   * been refreshed for this long is taken over (ms, default 10 s).
   */
  staleMs?: number;
  /**
   * For readers: when the store cannot be written (a read-only mount, no permission), run without
   * the lock instead of failing. Nothing can be written there through this mount, by us or by a
   * process we would wait for.
   */
  unlessReadOnly?: boolean;
}

const DEFAULT_STALE_MS = 10_000;

/** How often a waiter looks at the lock again: soon at first, then every 200 ms. */
const POLL_MS = [10, 20, 50, 100, 200];

interface Acquired {
  release: () => Promise<void>;
  held: HeldLock;
}

/** What a lock that could not be taken because the store is read-only holds: nothing. */
const NO_LOCK: Acquired = { release: async () => {}, held: { assertHeld() {} } };

async function readOwner(path: string): Promise<LockOwner | undefined> {
  return parseOwner((await readOptionalText(path, MAX_OWNER_BYTES)) ?? "");
}

/** The token of the owner record at `path` now, read synchronously. */
function tokenNow(path: string): string | undefined {
  try {
    return parseOwner(readFileSync(path, "utf8"))?.token;
  } catch {
    return undefined;
  }
}

/**
 * Whether the lock directory `lockPath` may be taken over, by the rules of {@link withLock};
 * undefined when it is gone. `token` identifies the holding judged (undefined: no owner record).
 */
async function judge(
  lockPath: string,
  ownerPath: string,
  staleMs: number,
): Promise<{ stale: boolean; token?: string; ino: number } | undefined> {
  const st = await stat(lockPath).catch(() => undefined);
  if (st === undefined) return undefined;
  const owner = await readOwner(ownerPath);
  const state = ownerState(owner);
  const stale = state === "unknown" ? Date.now() - st.mtimeMs > staleMs : state === "dead";
  return { stale, token: owner?.token, ino: st.ino };
}

/**
 * Makes the lock directory `lockPath` and writes this process's owner record in it; undefined
 * when the directory was there. When the owner cannot be written, the directory goes again.
 */
async function claim(lockPath: string, ownerPath: string): Promise<LockOwner | undefined> {
  try {
    await mkdir(lockPath);
  } catch (err) {
    if (hasCode(err, "EEXIST")) return undefined;
    throw err;
  }
  const owner = ownerRecord();
  try {
    await writeFile(ownerPath, JSON.stringify(owner), { flag: "wx" });
  } catch (err) {
    await rm(lockPath, { recursive: true, force: true });
    throw err;
  }
  return owner;
}

/**
 * Removes the lock `lockPath` when it is still the holding judged stale (same owner token, or
 * same inode without an owner) and still stale. One process at a time does so, holding the
 * lock's `.break` lock (itself recovered by the same rules), so that a process which judged the
 * old lock stale never removes the new one another process has just made. Returns true when the
 * caller should try to take the lock again at once.
 */
async function breakStale(
  lockPath: string,
  ownerPath: string,
  judged: { token?: string; ino: number },
  staleMs: number,
): Promise<boolean> {
  const guard = `${lockPath}.break`;
  const guardOwner = join(guard, OWNER_FILE);
  if ((await claim(guard, guardOwner)) === undefined) {
    // Another process is breaking it, or died doing so: then its guard goes.
    const other = await judge(guard, guardOwner, staleMs);
    if (other === undefined) return true;
    if (other.stale) await rm(guard, { recursive: true, force: true });
    return other.stale;
  }
  try {
    const now = await judge(lockPath, ownerPath, staleMs);
    if (now === undefined) return true;
    if (!now.stale || now.token !== judged.token || now.ino !== judged.ino) return false;
    await rm(lockPath, { recursive: true, force: true });
    return true;
  } finally {
    await rm(guard, { recursive: true, force: true });
  }
}

/** Holds the lock directory `lockPath`, claimed as `owner`: refreshes its mtime. */
function hold(lockPath: string, ownerPath: string, owner: LockOwner, staleMs: number): Acquired {
  const ours = () => tokenNow(ownerPath) === owner.token;
  let lost = false;
  const refresh = setInterval(
    () => {
      if (!ours()) lost = true;
      else utimes(lockPath, new Date(), new Date()).catch(() => (lost = true));
    },
    Math.max(1000, Math.floor(staleMs / 5)),
  );
  refresh.unref();
  return {
    held: {
      assertHeld() {
        if (lost || !ours()) {
          throw new AxError(`lost the lock ${lockPath}: another process took it over`);
        }
      },
    },
    release: async () => {
      clearInterval(refresh);
      if (ours()) await rm(lockPath, { recursive: true, force: true });
    },
  };
}

/**
 * Takes the lock `name` of store `dir`; with `wait` false, returns undefined at once when a live
 * process holds it.
 */
async function acquire(
  dir: string,
  name: string,
  options: LockOptions,
  wait: boolean,
): Promise<Acquired | undefined> {
  const { lock: lockPath, owner: ownerPath } = lockPaths(dir, name);
  const cannotLock = async (err: unknown) => {
    if (options.unlessReadOnly && isNotWritable(err)) return NO_LOCK;
    throw await storeError(dir, err, "lock", lockPath);
  };
  const staleMs = options.staleMs ?? DEFAULT_STALE_MS;
  let polls = 0;
  try {
    await mkdir(bookkeeping(dir).locks, { recursive: true });
    for (;;) {
      throwIfAborted(options.signal);
      const owner = await claim(lockPath, ownerPath);
      if (owner !== undefined) return hold(lockPath, ownerPath, owner, staleMs);
      const judged = await judge(lockPath, ownerPath, staleMs);
      if (judged === undefined) continue; // released meanwhile
      if (judged.stale && (await breakStale(lockPath, ownerPath, judged, staleMs))) continue;
      if (!wait) return undefined;
      if (polls === 0) options.onWait?.();
      const delay = POLL_MS[Math.min(polls++, POLL_MS.length - 1)]!;
      await new Promise((r) => setTimeout(r, delay * (0.5 + Math.random())));
    }
  } catch (err) {
    if (err instanceof AxError) throw err;
    return cannotLock(err);
  }
}

/**
 * Runs `fn` while holding the cross-process lock `name` of the store directory `dir`
 * (`<dir>/.axvisor-image/locks/<name>.lock`, a directory with its owner record in it: pid, host,
 * and on Linux the boot, pid namespace and start time of the process). A second process waits
 * for it. When a lock is stale, the next process takes it over:
 *
 * - its owner ran on this machine (same host, and on Linux same boot and pid namespace) and its
 *   process is gone, or its pid now belongs to another process (another start time): at once;
 * - its owner runs on this machine: never, however long it holds the lock (a stopped or busy
 *   process keeps it, as a pull in progress must);
 * - otherwise (another host or container, no owner record yet, or a live pid that cannot be told
 *   from a reused one): when the lock directory's mtime, which its holder refreshes every
 *   `staleMs / 5` (at least every second), is older than `staleMs` (default 10 s).
 *
 * A holder whose lock was taken over finds out at its next {@link HeldLock.assertHeld}.
 */
export async function withLock<T>(
  dir: string,
  name: string,
  fn: (lock: HeldLock) => Promise<T>,
  options: LockOptions = {},
): Promise<T> {
  const lock = (await acquire(dir, name, options, true))!;
  try {
    return await fn(lock.held);
  } finally {
    await lock.release();
  }
}

/**
 * Runs `fn` under the lock `name` when no live process holds it, and returns true; returns false
 * at once, without running `fn`, when one does.
 */
export async function tryWithLock(
  dir: string,
  name: string,
  fn: (lock: HeldLock) => Promise<void>,
  options: Omit<LockOptions, "onWait"> = {},
): Promise<boolean> {
  const lock = await acquire(dir, name, options, false);
  if (!lock) return false;
  try {
    await fn(lock.held);
    return true;
  } finally {
    await lock.release();
  }
}
