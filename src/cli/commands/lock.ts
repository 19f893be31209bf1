import type { Command } from "commander";
import { lockImages } from "../../ops/lock.js";
import { lockFilePath, lockedSpec } from "../../registry/lock-file.js";
import { parseSpec } from "../../registry/resolve.js";
import { commandContext } from "../context.js";
import { result } from "../output.js";

/** `lock [NAME[:VERSION]...] [--update] [--lock FILE]`: prints every locked `NAME:VERSION`. */
export async function lockCommand(
  images: string[],
  options: { update?: boolean; lock?: string },
  command: Command,
): Promise<void> {
  const specs = images.map(parseSpec);
  const ctx = await commandContext(command);
  const path = lockFilePath(options.lock, ctx.resolved.file);
  const res = await lockImages(ctx.config, path, specs, { ...ctx, update: options.update });
  for (const c of res.changes) {
    ctx.logger.info(
      c.from === undefined ? `locked ${c.name}:${c.to}` : `${c.name}: ${c.from} -> ${c.to}`,
    );
  }
  ctx.logger.info(`wrote ${path}`);
  result(...res.entries.map(lockedSpec));
}
