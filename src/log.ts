/** The sink every operation reports its status lines to; the CLI decides where they go. */
export interface Logger {
  /** A status line (stderr in the CLI, hidden by `--quiet`). */
  info(message: string): void;
  /** A warning (stderr in the CLI, prefixed `warning: `). */
  warn(message: string): void;
}

/** A logger that drops everything: the default for library calls. */
export const silentLogger: Logger = { info: () => {}, warn: () => {} };

/**
 * `logger` with every line about `subject` starting `subject: ` (lines that already do are left
 * as they are), so that the status lines of concurrent work say which one they are about.
 */
export function namedLogger(logger: Logger, subject: string): Logger {
  const named = (message: string) =>
    message.startsWith(`${subject}: `) ? message : `${subject}: ${message}`;
  return { info: (m) => logger.info(named(m)), warn: (m) => logger.warn(named(m)) };
}
