import type { Logger } from "../log.js";

/** How the CLI talks to the user; results go to stdout, everything else to stderr. */
export interface OutputOptions {
  quiet: boolean;
}

/** True when stderr is an interactive terminal that should get live progress bars. */
export function isInteractive(): boolean {
  return Boolean(process.stderr.isTTY) && !process.env.CI && process.env.TERM !== "dumb";
}

/** A logger on stderr: status lines unless quiet, warnings always. */
export function stderrLogger(options: OutputOptions): Logger {
  return {
    info: (message) => {
      if (!options.quiet) process.stderr.write(`${message}\n`);
    },
    warn: (message) => {
      process.stderr.write(`warning: ${message}\n`);
    },
  };
}

/** Writes a result line to stdout. */
export function result(line: string): void {
  process.stdout.write(`${line}\n`);
}
