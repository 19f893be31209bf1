/**
 * Retrying requests: connection failures, 5xx, 408 and 429 are tried again after an exponential
 * backoff with full jitter (or the server's `Retry-After`, capped), a bounded number of times.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { AbortedError } from "../errors.js";
import { silentLogger, type Logger } from "../log.js";
import {
  httpRequest,
  statusReason,
  TransferError,
  type HttpRequestOptions,
  type HttpResponse,
} from "./http.js";
import { DEFAULT_RETRIES, retryBaseMsFromEnv } from "./tuning.js";

/** How often and how patiently to retry. */
export interface RetryOptions {
  /** Retries after the first attempt; default {@link DEFAULT_RETRIES}. */
  retries?: number;
  /** Backoff base in ms (the n-th retry waits up to base * 2^(n-1)); default 500, or the
   *  environment variable `AXVISOR_IMAGE_RETRY_BASE_MS`. */
  retryBaseMs?: number;
  /** Told one line per retry, naming the URL and the reason. */
  logger?: Logger;
  /** A server that cannot be reached at all (refused, unknown host, connect timeout) fails at
   *  once instead of being retried: right for a mirror, which has a next candidate after it. */
  failFastWhenUnreachable?: boolean;
}

/** The longest wait a `Retry-After` header can impose. */
export const MAX_RETRY_AFTER_MS = 60_000;
/** The longest backoff wait, whatever the retry count. */
const MAX_BACKOFF_MS = 30_000;

/** True for statuses worth trying again: 408, 429 and every 5xx. */
export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 429 || (status >= 500 && status <= 599);
}

/**
 * The wait a `Retry-After` header asks for, in ms (seconds or an HTTP date; capped at
 * {@link MAX_RETRY_AFTER_MS}), or undefined when absent or unreadable.
 */
export function retryAfterMs(value: string | undefined, now = Date.now()): number | undefined {
  if (value === undefined) return undefined;
  const text = value.trim();
  const ms = /^\d+$/.test(text) ? Number(text) * 1000 : Date.parse(text) - now;
  if (Number.isNaN(ms)) return undefined;
  return Math.min(Math.max(ms, 0), MAX_RETRY_AFTER_MS);
}

/**
 * A retry budget shared by the attempts of one transfer: each failure without progress spends one
 * retry (and waits its backoff); progress gives the whole budget back.
 */
export class RetryBudget {
  readonly #retries: number;
  readonly #baseMs: number;
  readonly #logger: Logger;
  readonly #signal: AbortSignal | undefined;
  readonly #failFastWhenUnreachable: boolean;
  #failures = 0;

  constructor(options: RetryOptions & { signal?: AbortSignal } = {}) {
    this.#retries = options.retries ?? DEFAULT_RETRIES;
    this.#failFastWhenUnreachable = options.failFastWhenUnreachable ?? false;
    this.#baseMs = options.retryBaseMs ?? retryBaseMsFromEnv();
    this.#logger = options.logger ?? silentLogger;
    this.#signal = options.signal;
  }

  /** True when `failure` is worth a retry (if any is left). */
  mayRetry(failure: TransferError): boolean {
    return failure.retryable && !(failure.unreachable && this.#failFastWhenUnreachable);
  }

  /** True when no retry is left. */
  get exhausted(): boolean {
    return this.#failures >= this.#retries;
  }

  /**
   * Spends one retry after a failure described by `reason` (a one-line message naming the URL):
   * logs it, then waits `waitMs` (a server's Retry-After) or the jittered backoff. Resolves false
   * at once, without waiting, when the budget is exhausted. Rejects with `AbortedError` on abort.
   */
  async retry(reason: string, waitMs?: number): Promise<boolean> {
    if (this.exhausted) return false;
    this.#failures++;
    const ceiling = Math.min(this.#baseMs * 2 ** (this.#failures - 1), MAX_BACKOFF_MS);
    const delay = Math.round(waitMs ?? Math.random() * ceiling);
    this.#logger.info(
      `retry ${this.#failures}/${this.#retries} in ${(delay / 1000).toFixed(1)} s: ${reason}`,
    );
    try {
      await sleep(delay, undefined, { signal: this.#signal });
    } catch {
      throw new AbortedError();
    }
    return true;
  }

  /** The error to throw once `failure` could not be retried any more. */
  gaveUp(failure: TransferError): TransferError {
    return new TransferError(
      failure.url,
      `${failure.reason} (gave up after ${this.#retries} retries)`,
      { retryable: true, cause: failure },
    );
  }

  /** Bytes flowed: the next failure starts counting from zero again. */
  progressed(): void {
    this.#failures = 0;
  }
}

/**
 * {@link httpRequest} drawing its retries from `budget`. Resolves with the first answer that is not
 * retryable, or with the last retryable one (5xx, 408, 429) once the budget is spent; rejects with
 * the last {@link TransferError} when connecting kept failing.
 */
export async function requestWithBudget(
  url: string,
  options: HttpRequestOptions,
  budget: RetryBudget,
): Promise<HttpResponse> {
  for (;;) {
    let response: HttpResponse;
    try {
      response = await httpRequest(url, options);
    } catch (err) {
      if (!(err instanceof TransferError) || !budget.mayRetry(err)) throw err;
      if (await budget.retry(err.message)) continue;
      throw budget.gaveUp(err);
    }
    if (!isRetryableStatus(response.status) || budget.exhausted) return response;
    response.body.destroy();
    const wait = retryAfterMs(response.headers["retry-after"]);
    await budget.retry(`${response.url}: ${statusReason(response.status)}`, wait);
  }
}

/**
 * {@link httpRequest} with retries: connection failures, 5xx, 408 and 429 are retried with
 * exponential backoff and full jitter (honouring `Retry-After`), at most `retries` times; any other
 * answer is returned at once. Backoff sleeps end early, with `AbortedError`, when `signal` aborts.
 */
export function requestWithRetry(
  url: string,
  options: HttpRequestOptions & RetryOptions = {},
): Promise<HttpResponse> {
  return requestWithBudget(url, options, new RetryBudget(options));
}
