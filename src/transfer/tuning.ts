/**
 * Every default of a transfer, in one place (the CLI's help shows them from here: this module
 * loads nothing of HTTP): the stall timeout, the low-speed rule, the retries, and the tuning read
 * from the environment for unusual networks and for tests, the backoff base of retries
 * (`AXVISOR_IMAGE_RETRY_BASE_MS`) and the deadline of a registry fetch
 * (`AXVISOR_IMAGE_REGISTRY_TIMEOUT`). A malformed value is a usage error naming the variable.
 */
import { UsageError } from "../errors.js";
import type { LowSpeedRule } from "./watchdog.js";

/** No byte for this long while waiting on a server: abandon the connection (and resume). */
export const DEFAULT_STALL_TIMEOUT_MS = 30_000;

/**
 * Default low-speed rule: 1 KiB/s averaged over 30 s. Far below any usable link (an image of
 * 50 MiB would take 14 hours), so it never cuts a slow but working download, and 30 s is the
 * stall timeout: a connection that is nearly silent is treated like a silent one.
 */
export const DEFAULT_LOW_SPEED: LowSpeedRule = { bytesPerSecond: 1024, seconds: 30 };

/** Retries after the first attempt of a request (renewed whenever a download's bytes flowed). */
export const DEFAULT_RETRIES = 5;

const DEFAULT_RETRY_BASE_MS = 500;

/**
 * Default deadline of one registry file, retries included: 2 minutes. Registry files are text of a
 * few KiB to a few MiB; one that is not complete by then comes from a server that drips it.
 */
export const DEFAULT_REGISTRY_DEADLINE_MS = 120_000;

/** The non-negative number in the environment variable `name`, or `fallback` when unset. */
function numberFromEnv(name: string, unit: string, fallback: number): number {
  const text = process.env[name];
  if (text === undefined || text === "") return fallback;
  const value = Number(text);
  if (!Number.isFinite(value) || value < 0) {
    throw new UsageError(`${name} must be a number of ${unit}, not "${text}"`);
  }
  return value;
}

/** Backoff base of retries in ms: `AXVISOR_IMAGE_RETRY_BASE_MS`, default 500. */
export function retryBaseMsFromEnv(): number {
  return numberFromEnv("AXVISOR_IMAGE_RETRY_BASE_MS", "ms", DEFAULT_RETRY_BASE_MS);
}

/**
 * Deadline of one registry file in ms: `AXVISOR_IMAGE_REGISTRY_TIMEOUT` (seconds, 0 = none),
 * default {@link DEFAULT_REGISTRY_DEADLINE_MS}.
 */
export function registryDeadlineMsFromEnv(): number {
  const seconds = numberFromEnv(
    "AXVISOR_IMAGE_REGISTRY_TIMEOUT",
    "seconds",
    DEFAULT_REGISTRY_DEADLINE_MS / 1000,
  );
  return seconds * 1000;
}
