/**
 * Tuning read from the environment, for unusual networks and for tests: the backoff base of
 * retries (`AXVISOR_IMAGE_RETRY_BASE_MS`) and the deadline of a registry fetch
 * (`AXVISOR_IMAGE_REGISTRY_TIMEOUT`). A malformed value is a usage error naming the variable.
 */
import { UsageError } from "../errors.js";

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
