/**
 * Time limits of transfers, one mechanism for downloads and registry fetches alike:
 *
 * - **stall**: no byte for `stallTimeoutMs` while we wait on the server (for the answer's headers,
 *   or for body bytes the reader asked for). Time the reader spends elsewhere (writing to disk,
 *   extracting) does not count: a slow disk is not a silent server.
 * - **low speed** (curl's `--speed-limit` / `--speed-time`): over every `seconds` spent waiting on
 *   the body, fewer than `bytesPerSecond` x `seconds` bytes arrived: the connection is abandoned.
 *   This catches a server that drips bytes just often enough never to look stalled.
 * - **deadline** ({@link withDeadline}): a bound on a whole operation, retries included.
 *
 * A {@link Watchdog} follows one exchange; the HTTP layer tells it when bytes arrive and when the
 * reader waits or is busy, and it calls back once when a limit is passed.
 */
import { performance } from "node:perf_hooks";
import { AxError } from "../errors.js";
import { linkedController } from "../concurrency.js";

/** The low-speed rule: below `bytesPerSecond` over `seconds` of waiting, give up the connection. */
export interface LowSpeedRule {
  /** The slowest acceptable average, in bytes per second; 0 turns the rule off. */
  bytesPerSecond: number;
  /** Over how many seconds of waiting the average is taken; 0 turns the rule off. */
  seconds: number;
}

/** Which limit a {@link Watchdog} saw passed. */
export interface Expiry {
  /** `connect`: no connection within the stall timeout; `headers`: no answer; `body`: no byte
   *  while the reader waited; `slow`: the low-speed rule. */
  kind: "connect" | "headers" | "body" | "slow";
  /** What happened, in words: `no response (stalled)`, `too slow: ...`. */
  reason: string;
}

/** Limits of one exchange. */
export interface WatchdogLimits {
  /** No byte for this long while waiting: expire. */
  stallTimeoutMs: number;
  /** Low-speed rule for the body; undefined or zeros: off. */
  lowSpeed?: LowSpeedRule;
}

/** What the watchdog may ask about the request while its headers are awaited. */
export interface RequestProbe {
  /** True while the connection is not established yet. */
  connecting(): boolean;
  /** Request bytes written so far (an upload in progress is not a stall). */
  bytesWritten(): number;
}

/** Follows one exchange; see the module comment. Times are monotonic milliseconds. */
export class Watchdog {
  readonly #stallMs: number;
  readonly #rule: LowSpeedRule | undefined;
  readonly #onExpire: (expiry: Expiry) => void;
  readonly #probe: RequestProbe;
  #timer: NodeJS.Timeout | undefined;
  /** When the timer fires (monotonic ms). */
  #due = 0;
  #inBody = false;
  /** True while someone waits on the server: always while headers are awaited. */
  #waiting = true;
  /** When the current wait began. */
  #waitStart: number;
  /** From when the current wait's time is not yet in `#windowWaited`. */
  #accruedSince: number;
  /** When the last byte arrived (or, before the answer, the last request byte was written). */
  #lastByte: number;
  #written = 0;
  /** Waiting time of the current low-speed window, not counting the current wait. */
  #windowWaited = 0;
  /** Bytes of the current low-speed window. */
  #windowBytes = 0;

  constructor(limits: WatchdogLimits, probe: RequestProbe, onExpire: (expiry: Expiry) => void) {
    this.#stallMs = limits.stallTimeoutMs;
    const rule = limits.lowSpeed;
    this.#rule = rule && rule.bytesPerSecond > 0 && rule.seconds > 0 ? rule : undefined;
    this.#probe = probe;
    this.#onExpire = onExpire;
    this.#waitStart = this.#accruedSince = this.#lastByte = performance.now();
    this.#arm(this.#stallMs);
  }

  /** The answer's headers arrived: from now on the body is watched, while the reader waits. */
  headersReceived(): void {
    this.#inBody = true;
    this.#lastByte = performance.now();
    this.#waiting = false;
    this.#windowWaited = 0;
    this.#windowBytes = 0;
  }

  /** The reader asks for more body bytes than are buffered. */
  waiting(): void {
    if (this.#waiting || this.#timer === undefined) return;
    this.#waiting = true;
    const now = performance.now();
    this.#waitStart = this.#accruedSince = now;
    // The timer was set while the reader was busy: bring it forward to the next limit.
    const next = this.#untilNextLimit(now);
    if (this.#due > now + next) {
      clearTimeout(this.#timer);
      this.#arm(next);
    }
  }

  /** The reader has enough for now: time stops counting until it waits again. */
  idle(): void {
    if (!this.#waiting || !this.#inBody) return;
    this.#waiting = false;
    this.#windowWaited += performance.now() - this.#accruedSince;
  }

  /** `bytes` body bytes arrived. */
  received(bytes: number): void {
    this.#lastByte = performance.now();
    this.#windowBytes += bytes;
  }

  /** The exchange is over: no more callbacks. */
  stop(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #arm(ms: number): void {
    const delay = Math.max(1, Math.ceil(ms));
    this.#due = performance.now() + delay;
    this.#timer = setTimeout(() => this.#check(), delay);
    this.#timer.unref();
  }

  /** While the reader waits on the body: ms until the stall or the low-speed window may end. */
  #untilNextLimit(now: number): number {
    const silence = now - Math.max(this.#lastByte, this.#waitStart);
    let next = this.#stallMs - silence;
    if (this.#rule !== undefined) {
      const waited = this.#windowWaited + (now - this.#accruedSince);
      next = Math.min(next, this.#rule.seconds * 1000 - waited);
    }
    return next;
  }

  #expire(expiry: Expiry): void {
    this.#timer = undefined;
    this.#onExpire(expiry);
  }

  /** Runs when the nearest limit could have been passed; re-arms for the next one otherwise. */
  #check(): void {
    const now = performance.now();
    if (!this.#inBody) {
      const written = this.#probe.bytesWritten();
      if (written !== this.#written) {
        this.#written = written;
        this.#lastByte = now;
      }
      const silence = now - this.#lastByte;
      if (silence < this.#stallMs) return this.#arm(this.#stallMs - silence);
      if (this.#probe.connecting()) {
        return this.#expire({ kind: "connect", reason: "connection timed out" });
      }
      return this.#expire({ kind: "headers", reason: "no response (stalled)" });
    }
    if (!this.#waiting) return this.#arm(this.#stallMs); // waiting() brings it forward
    const rule = this.#rule;
    if (rule !== undefined) {
      const waited = this.#windowWaited + (now - this.#accruedSince);
      if (waited >= rule.seconds * 1000) {
        const rate = this.#windowBytes / (waited / 1000);
        if (rate < rule.bytesPerSecond) {
          return this.#expire({
            kind: "slow",
            reason: `too slow: ${formatRate(rate)} over ${rule.seconds} s (the limit is ${formatRate(rule.bytesPerSecond)})`,
          });
        }
        this.#windowWaited = 0;
        this.#windowBytes = 0;
        this.#accruedSince = now;
      }
    }
    if (now - Math.max(this.#lastByte, this.#waitStart) >= this.#stallMs) {
      return this.#expire({ kind: "body", reason: "no data received (stalled)" });
    }
    this.#arm(this.#untilNextLimit(now));
  }
}

/** `0.4 B/s`, `12 B/s`, `1.5 KiB/s`: a rate for messages, rounded. */
function formatRate(bytesPerSecond: number): string {
  if (bytesPerSecond >= 1024) return `${(bytesPerSecond / 1024).toFixed(1)} KiB/s`;
  const figure =
    bytesPerSecond < 10 ? Number(bytesPerSecond.toFixed(1)) : Math.round(bytesPerSecond);
  return `${figure} B/s`;
}

/**
 * Runs `operation` with a signal that aborts when `signal` does or when `ms` have passed; in the
 * second case the rejection becomes `expired()` (typically a non-retryable TransferError naming the
 * URL). Without `ms` (undefined, 0 or infinite), it is `operation(signal)`.
 */
export async function withDeadline<T>(
  ms: number | undefined,
  signal: AbortSignal | undefined,
  operation: (signal: AbortSignal | undefined) => Promise<T>,
  expired: () => AxError,
): Promise<T> {
  if (ms === undefined || ms <= 0 || !Number.isFinite(ms)) return operation(signal);
  const link = linkedController(signal);
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    link.controller.abort();
  }, ms);
  try {
    return await operation(link.controller.signal);
  } catch (err) {
    if (timedOut && !signal?.aborted) throw expired();
    throw err;
  } finally {
    clearTimeout(timer);
    link.dispose();
  }
}
