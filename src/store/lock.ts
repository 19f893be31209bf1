import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { AxError, hasCode, throwIfAborted } from "../errors.js";
import { bookkeeping } from "./layout.js";

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
}

const POLL_MS = 200;

/**
 * Runs `fn` while holding the cross-process lock `name` of the store directory `dir`
 * (`<dir>/.axvisor-image/locks/<name>.lock`). A second process waits for it; a lock whose owner
 * was killed goes stale within `staleMs` (default 10 s) and is recovered.
 */
export async function withLock<T>(
  dir: string,
  name: string,
  fn: (lock: HeldLock) => Promise<T>,
  options: LockOptions = {},
): Promise<T> {
  const locks = bookkeeping(dir).locks;
  await mkdir(locks, { recursive: true });
  const lockPath = join(locks, `${name}.lock`);
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
      if (!hasCode(err, "ELOCKED")) {
        throw new AxError(`cannot lock ${lockPath}: ${(err as Error).message}`, { cause: err });
      }
      if (!waited) {
        waited = true;
        options.onWait?.();
      }
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
  }
  const held: HeldLock = {
    assertHeld() {
      if (compromised) {
        throw new AxError(`lost the lock ${lockPath}: another process took it over`);
      }
    },
  };
  try {
    return await fn(held);
  } finally {
    await release().catch(() => {});
  }
}
