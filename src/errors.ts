/**
 * Error types shared by every layer. The CLI prints any {@link AxError} as one `error: ...` line
 * (plus an optional `hint: ...` line) and exits with its {@link AxError.exitCode}; anything else is
 * an internal error.
 */

/** An error meant for the user: its message names the image, file, URL or option at fault. */
export class AxError extends Error {
  /** Exit status the CLI uses for this error: 1 failed, 2 bad usage. */
  readonly exitCode: 1 | 2;
  /** An optional second line telling the user what to do next. */
  readonly hint: string | undefined;

  constructor(message: string, options: { hint?: string; cause?: unknown; exitCode?: 1 | 2 } = {}) {
    super(message, { cause: options.cause });
    this.name = "AxError";
    this.exitCode = options.exitCode ?? 1;
    this.hint = options.hint;
  }
}

/** Bad command-line or API usage: an unknown option, a malformed argument (exit status 2). */
export class UsageError extends AxError {
  constructor(message: string, options: { hint?: string; cause?: unknown } = {}) {
    super(message, { ...options, exitCode: 2 });
    this.name = "UsageError";
  }
}

/** A downloaded archive whose sha256 differs from the registry entry's. */
export class ChecksumError extends AxError {
  constructor(message: string, options: { hint?: string } = {}) {
    super(message, options);
    this.name = "ChecksumError";
  }
}

/** The operation was cancelled through its AbortSignal. */
export class AbortedError extends AxError {
  constructor(message = "operation aborted", options: { hint?: string } = {}) {
    super(message, options);
    this.name = "AbortedError";
  }
}

/** Throws {@link AbortedError} when `signal` has been aborted. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new AbortedError();
}

/** Node's system error shape (`code`, `path`, `syscall`). */
export interface SystemError extends Error {
  code?: string;
  path?: string;
  syscall?: string;
}

/** True when `err` is a Node system error with the given code (e.g. `ENOENT`). */
export function hasCode(err: unknown, code: string): err is SystemError {
  return err instanceof Error && (err as SystemError).code === code;
}

/**
 * Turns a file-system error met while writing `path` into an {@link AxError} with a clear message:
 * `no space left on device while writing <path>` for ENOSPC, the system message otherwise.
 */
export function fsError(err: unknown, action: string, path: string): AxError {
  if (err instanceof AxError) return err;
  if (hasCode(err, "ENOSPC")) {
    return new AxError(`no space left on device while writing ${path}`, { cause: err });
  }
  const detail = err instanceof Error ? ((err as SystemError).code ?? err.message) : String(err);
  return new AxError(`failed to ${action} ${path}: ${detail}`, { cause: err });
}

/** True when `err` (or the error it wraps) is a full disk (ENOSPC). */
export function isNoSpace(err: unknown): boolean {
  for (let e: unknown = err; e instanceof Error; e = e.cause) {
    if (hasCode(e, "ENOSPC")) return true;
  }
  return false;
}
