import type { Command } from "commander";
import { AxError } from "../../errors.js";
import { removeImages } from "../../ops/rm.js";
import { parseSpec } from "../../registry/resolve.js";
import { commandContext } from "../context.js";

/** `rm NAME[:VERSION]...`. */
export async function rmCommand(
  images: string[],
  _options: unknown,
  command: Command,
): Promise<void> {
  const specs = images.map(parseSpec);
  const ctx = await commandContext(command);
  const results = await removeImages(ctx.config, specs, ctx);
  const missing = results.filter((r) => r.removed.length === 0).map((r) => r.image);
  for (const r of results) for (const path of r.removed) ctx.logger.info(`removed ${path}`);
  if (missing.length > 0) {
    throw new AxError(`not in the store ${ctx.config.localStorage}: ${missing.join(", ")}`);
  }
}
