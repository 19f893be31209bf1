import type { Command } from "commander";
import { removeImages } from "../../ops/rm.js";
import { parseSpec } from "../../registry/resolve.js";
import { commandContext } from "../context.js";

/**
 * `rm NAME[:VERSION]...`: an image that is not in the store is a notice, not an error (as in the
 * Rust tool: clean-up steps of scripts run `rm` whatever is there).
 */
export async function rmCommand(
  images: string[],
  _options: unknown,
  command: Command,
): Promise<void> {
  const specs = images.map(parseSpec);
  const ctx = await commandContext(command);
  const results = await removeImages(ctx.config, specs, ctx);
  for (const r of results) {
    for (const path of r.removed) ctx.logger.info(`removed ${path}`);
    if (r.removed.length === 0) {
      ctx.logger.info(`${r.image}: not in the store ${ctx.config.localStorage}; nothing to remove`);
    }
  }
}
