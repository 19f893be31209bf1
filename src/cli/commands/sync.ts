import type { Command } from "commander";
import { sync } from "../../ops/sync.js";
import { commandContext } from "../context.js";

/** `sync`. */
export async function syncCommand(_options: unknown, command: Command): Promise<void> {
  const ctx = await commandContext(command);
  const res = await sync(ctx.config, ctx);
  if (res.usedFallback) ctx.logger.warn(`synced from the fallback registry ${res.source}`);
}
