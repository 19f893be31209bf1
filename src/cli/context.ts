import type { Command } from "commander";
import { resolveConfig, type Config, type ResolvedConfig } from "../config/config.js";
import type { Logger } from "../log.js";
import { printInterruption, stderrLogger } from "./output.js";
import { overridesFrom, type GlobalOptions } from "./program.js";

/** Everything a command needs from the global options. */
export interface Context {
  resolved: ResolvedConfig;
  config: Config;
  quiet: boolean;
  logger: Logger;
  /** Aborted on SIGINT/SIGTERM so that downloads stop cleanly, keeping their `.part`. */
  signal: AbortSignal;
}

/**
 * An AbortSignal for SIGINT/SIGTERM: the first one aborts the operation (which cleans up and keeps
 * its `.part` for a resume), a second one exits at once. The listeners stay installed: a library
 * using signal-exit (write-file-atomic) re-raises a signal it believes nobody else handles.
 */
function interruptSignal(): AbortSignal {
  const controller = new AbortController();
  const onSignal = (signal: NodeJS.Signals) => {
    if (controller.signal.aborted) process.exit(signal === "SIGINT" ? 130 : 143);
    // Aborting first stops the progress bars: nothing draws them again after this line.
    controller.abort();
    printInterruption(`${signal === "SIGINT" ? "interrupted" : "terminated"}: stopping`);
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  return controller.signal;
}

/** The root program of a (sub)command. */
export function rootOf(command: Command): Command {
  let root = command;
  while (root.parent) root = root.parent;
  return root;
}

/** Resolves the configuration from the global options of `command`'s program. */
export async function commandContext(command: Command): Promise<Context> {
  const program = rootOf(command);
  const opts = program.opts<GlobalOptions>();
  const resolved = await resolveConfig({
    configFile: opts.config,
    overrides: await overridesFrom(program),
  });
  const quiet = Boolean(opts.quiet);
  return {
    resolved,
    config: resolved.config,
    quiet,
    logger: stderrLogger({ quiet }),
    signal: interruptSignal(),
  };
}
