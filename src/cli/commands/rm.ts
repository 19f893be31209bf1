import type { Command } from "commander";
import { removeImages } from "../../ops/rm.js";
import { parseSpec } from "../../registry/resolve.js";
import { AxError } from "../../errors.js";
import { MARKER_FILE } from "../../store/layout.js";
import { count } from "../../text.js";
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
    for (const path of r.kept) {
      ctx.logger.warn(`left ${path} alone: no ${MARKER_FILE} in it shows axvisor-image made it`);
    }
    if (r.removed.length === 0 && r.kept.length === 0) {
      ctx.logger.info(`${r.image}: not in the store ${ctx.config.localStorage}; nothing to remove`);
    }
  }
  const kept = results.reduce((n, r) => n + r.kept.length, 0);
  if (kept > 0) {
    throw new AxError(`rm left ${count(kept, "item")} alone`, {
      hint: "a folder of an image's name without a marker is not one this tool made: remove it yourself if it is not yours",
    });
  }
}
