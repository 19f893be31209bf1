import { mkdir, readFile, rm, stat, utimes, writeFile } from "node:fs/promises";
import { hostname } from "node:os";
import { AxError, hasCode, throwIfAborted } from "../errors.js";
import { isNotWritable, storeError } from "./access.js";
import { bookkeeping, lockPaths } from "./layout.js";

/** A held lock; {@link HeldLock.assertHeld} fails if another process took it over meanwhile. */
export interface HeldLock {
  /** Throws when the lock was lost (its refresh stalled and it went stale). */
  assertHeld(): void;
}

/** Options of {@link withLock}. */
export interface LockOptions {
  /** Called once when the lock is held by another process and we start waiting. */
  onWait?: () => void;
  signal?: AbortSignal;
  /** A lock not refreshed for this long belongs to a dead process and is taken over (ms). */
  staleMs?: number;
  /**
   * For readers: when the store cannot be written (a read-only mount, no permission), run without
   * the lock instead of failing. Nothing can be written there through this mount, by us or by a
   * process we would wait for.
   */
  unlessReadOnly?: boolean;
}

/** Who holds a lock: written beside the lock directory once it is acquired. */
interface Owner {
  pid: number;
  host: string;
  /** Inode of the lock directory this owner created, so an old owner file never vouches for a newer lock. */
  ino: number;
}

const POLL_MS = 200;

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return !hasCode(err, "ESRCH");
  }
}

/**
 * When the lock's owner was a process of this machine that no longer exists, ages the lock
 * directory so that the next attempt treats it as stale at once, instead of after `staleMs`.
 */
async function expireIfOwnerDied(lockPath: string, ownerPath: string): Promise<boolean> {
  try {
    const owner = JSON.parse(await readFile(ownerPath, "utf8")) as Owner;
    const st = await stat(lockPath);
    if (owner.host === hostname() && owner.ino === st.ino && !isAlive(owner.pid)) {
      await utimes(lockPath, 0, 0);
      return true;
    }
  } catch {
    // no owner file yet, or the lock just went away: the ordinary stale rule applies
  }
  return false;
}

interface Acquired {
  release: () => Promise<void>;
  held: HeldLock;
}

/** What a lock that could not be taken because the store is read-only holds: nothing. */
const NO_LOCK: Acquired = { release: async () => {}, held: { assertHeld() {} } };

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
  const locks = bookkeeping(dir).locks;
  const { lock: lockPath, owner: ownerPath } = lockPaths(dir, name);
  const cannotLock = async (err: unknown) => {
    if (options.unlessReadOnly && isNotWritable(err)) return NO_LOCK;
    throw await storeError(dir, err, "lock", lockPath);
  };
  try {
    await mkdir(locks, { recursive: true });
  } catch (err) {
    return cannotLock(err);
  }
  const stale = options.staleMs ?? 10_000;
  let compromised: Error | undefined;
  let waited = false;
  let release: () => Promise<void>;
  const { default: lockfile } = await import("proper-lockfile");
  for (;;) {
    throwIfAborted(options.signal);
    try {
      // proper-lockfile tracks held locks by their `file` argument: it must be unique per lock.
      release = await lockfile.lock(lockPath, {
        lockfilePath: lockPath,
        realpath: false,
        stale,
        update: Math.max(1000, Math.floor(stale / 5)),
        onCompromised: (err) => {
          compromised = err;
        },
      });
      break;
    } catch (err) {
      if (!hasCode(err, "ELOCKED")) return cannotLock(err);
      if (await expireIfOwnerDied(lockPath, ownerPath)) continue;
      if (!wait) return undefined;
      if (!waited) {
        waited = true;
        options.onWait?.();
      }
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
  }
  const owner: Owner = { pid: process.pid, host: hostname(), ino: (await stat(lockPath)).ino };
  await writeFile(ownerPath, JSON.stringify(owner)).catch(() => {});
  return {
    held: {
      assertHeld() {
        if (compromised) {
          throw new AxError(`lost the lock ${lockPath}: another process took it over`);
        }
      },
    },
    release: async () => {
      await rm(ownerPath, { force: true });
      await release().catch(() => {});
    },
  };
}

/**
 * Runs `fn` while holding the cross-process lock `name` of the store directory `dir`
 * (`<dir>/.axvisor-image/locks/<name>.lock`, via proper-lockfile). A second process waits for it.
 * A lock whose owner was killed is recovered: at once when the owner was on this machine, else
 * when it has not been refreshed for `staleMs` (default 10 s).
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
