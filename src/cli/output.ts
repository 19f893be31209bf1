/**
 * The CLI's output boundary: every line it prints, on stdout or stderr, goes through
 * {@link display}, so that no text from a registry, a server, an archive or a URL reaches the
 * terminal with control characters or credentials in it. Results go to stdout, everything else to
 * stderr.
 */
import { AxError, hasCode } from "../errors.js";
import type { Logger } from "../log.js";
import { printable, redactCredentials } from "../text.js";

/** How the CLI talks to the user; results go to stdout, everything else to stderr. */
export interface OutputOptions {
  quiet: boolean;
}

/**
 * `line` as it may be printed: credentials in URLs hidden (`https://***@host/`), control
 * characters, line breaks and bidirectional overrides escaped (`\x1b`, `\n`), so it stays one line.
 */
export function display(line: string): string {
  return printable(redactCredentials(line));
}

/** Several lines of text the tool wrote itself (help, completion scripts), each through {@link display}. */
export function displayText(text: string): string {
  return text.split("\n").map(display).join("\n");
}

/** True when stderr is an interactive terminal that should get live progress bars. */
export function isInteractive(): boolean {
  return Boolean(process.stderr.isTTY) && !process.env.CI && process.env.TERM !== "dumb";
}

/**
 * A display kept at the bottom of stderr (the progress bars): erased before any other line is
 * written there, drawn again after it.
 */
export interface LiveArea {
  /** Removes it from the screen, the cursor left at the start of the line where it began. */
  erase(): void;
  /** Draws it again below what was just written (nothing once it stopped). */
  redraw(): void;
}

let live: LiveArea | undefined;

/** Makes `area` the live area of stderr (undefined: none). */
export function setLiveArea(area: LiveArea | undefined): void {
  live = area;
}

/** Writes `text` (whole lines) on stderr, above the live area if there is one. */
export function writeStderr(text: string): void {
  if (live === undefined) {
    process.stderr.write(text);
    return;
  }
  live.erase();
  process.stderr.write(text);
  live.redraw();
}

/**
 * Says that a signal is stopping the command. On a terminal, it starts on a fresh line: after the
 * `^C` the terminal echoed, or where the erased live area began.
 */
export function printInterruption(message: string): void {
  const fresh = live === undefined && process.stderr.isTTY ? "\n" : "";
  writeStderr(`${fresh}${display(message)}\n`);
}

/** A logger on stderr: status lines unless quiet, warnings always. */
export function stderrLogger(options: OutputOptions): Logger {
  return {
    info: (message) => {
      if (!options.quiet) writeStderr(`${display(message)}\n`);
    },
    warn: (message) => {
      writeStderr(`warning: ${display(message)}\n`);
    },
  };
}

/**
 * Writes result lines to stdout, in one write: a reader that stops after the first line (`| head
 * -1`) has them all in the pipe already.
 */
export function result(...lines: string[]): void {
  process.stdout.write(lines.map((line) => `${display(line)}\n`).join(""));
}

/**
 * Prints `err` on stderr as one `error: ...` line (and a `hint: ...` line), plus the stack frames
 * with `AXVISOR_IMAGE_DEBUG=1`; returns the exit status it calls for (1, or 2 for bad usage).
 */
export function reportError(err: unknown): number {
  const debug = process.env.AXVISOR_IMAGE_DEBUG === "1";
  const lines: string[] = [];
  let status: number = 1;
  if (err instanceof AxError) {
    lines.push(`error: ${err.message}`);
    if (err.hint) lines.push(`hint: ${err.hint}`);
    status = err.exitCode;
  } else {
    lines.push(`error: internal error: ${err instanceof Error ? err.message : String(err)}`);
    if (!debug) lines.push("hint: set AXVISOR_IMAGE_DEBUG=1 for a stack trace");
  }
  if (debug && err instanceof Error && err.stack) {
    // The frames only: the message, the untrusted part, is on the error line already.
    lines.push(...err.stack.split("\n").filter((line) => /^\s+at /.test(line)));
  }
  writeStderr(lines.map((line) => `${display(line)}\n`).join(""));
  return status;
}

/**
 * Ends a command that worked on several items: every failure among `outcomes` but the last is
 * printed, and the last one thrown (for the exit status); an error that is not an AxError (a bug)
 * is thrown as it is. Does nothing when all succeeded.
 */
export function throwFailures(outcomes: readonly PromiseSettledResult<unknown>[]): void {
  const failures: AxError[] = [];
  for (const outcome of outcomes) {
    if (outcome.status === "fulfilled") continue;
    if (!(outcome.reason instanceof AxError)) throw outcome.reason;
    failures.push(outcome.reason);
  }
  for (const failure of failures.slice(0, -1)) reportError(failure);
  if (failures.length > 0) throw failures.at(-1);
}

/**
 * Exit status when the reader of our output went away (EPIPE): 128 + SIGPIPE, what a shell shows
 * for a C tool that SIGPIPE ended (`seq 1000000 | head -1`). Not 0: the command stopped before
 * finishing, and its output is incomplete.
 */
export const EXIT_OUTPUT_CLOSED = 141;

/**
 * Ends the process when stdout or stderr cannot be written any more (Node reports it as an
 * `error` event, a stack trace when nobody listens): quietly with {@link EXIT_OUTPUT_CLOSED} when
 * the reader closed the pipe (`| head -1`); for stdout with one `error:` line and exit 1 otherwise
 * (`> /dev/full`: ENOSPC). A stderr that fails otherwise is given up on: there is nowhere to say so.
 */
export function watchOutputStreams(): void {
  process.stdout.on("error", (err) => {
    if (hasCode(err, "EPIPE")) process.exit(EXIT_OUTPUT_CLOSED);
    const reason = hasCode(err, "ENOSPC")
      ? "no space left on device"
      : ((err as NodeJS.ErrnoException).code ?? err.message);
    process.stderr.write(`error: cannot write to standard output: ${display(reason)}\n`);
    process.exit(1);
  });
  process.stderr.on("error", (err) => {
    if (hasCode(err, "EPIPE")) process.exit(EXIT_OUTPUT_CLOSED);
  });
}
