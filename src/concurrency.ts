/** Running work concurrently: bounded fan-out, and cancellation shared by the tasks of a fan-out. */
import { setMaxListeners } from "node:events";

/** A controller that follows a parent signal (see {@link linkedController}). */
export interface LinkedController {
  /** Aborted when the parent is, or by its owner. */
  controller: AbortController;
  /** Stops following the parent (removes the one listener it added); call when done. */
  dispose(): void;
}

/**
 * An AbortController whose signal aborts when `parent` does (at once if it already has), for work
 * fanned out to many concurrent tasks: the parent carries one listener however many tasks listen
 * to the child, and the child may carry any number of them (no MaxListenersExceededWarning: its
 * listeners are bounded by the caller's concurrency, not leaked).
 */
export function linkedController(parent: AbortSignal | undefined): LinkedController {
  const controller = new AbortController();
  setMaxListeners(Infinity, controller.signal);
  const abort = () => controller.abort(parent?.reason);
  if (parent?.aborted) abort();
  else parent?.addEventListener("abort", abort, { once: true });
  return { controller, dispose: () => parent?.removeEventListener("abort", abort) };
}

/**
 * Runs `fn` on every item, at most `limit` at a time, starting them in order. Resolves when all
 * are done, with each outcome in the position of its item; one failing does not stop the others.
 * Each call gets a signal that follows `signal` (see {@link linkedController}): pass it down
 * rather than `signal` itself.
 */
export async function mapSettled<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, signal: AbortSignal | undefined) => Promise<R>,
  signal?: AbortSignal,
): Promise<PromiseSettledResult<R>[]> {
  const link = signal === undefined ? undefined : linkedController(signal);
  const shared = link?.controller.signal;
  const results: PromiseSettledResult<R>[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      try {
        results[i] = { status: "fulfilled", value: await fn(items[i]!, shared) };
      } catch (reason) {
        results[i] = { status: "rejected", reason };
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  } finally {
    link?.dispose();
  }
  return results;
}
