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
 * `logger` with every line led by `prefix: `: the status lines of a layer that does not know what
 * they are about (a download's retries, the mirror that served it) then name the image.
 */
export function prefixedLogger(logger: Logger, prefix: string): Logger {
  return {
    info: (message) => logger.info(`${prefix}: ${message}`),
    warn: (message) => logger.warn(`${prefix}: ${message}`),
  };
}
