import type { Command } from "commander";
import { sync } from "../../ops/sync.js";
import { commandContext } from "../context.js";

/** `sync [--allow-empty] [--allow-shrink]`. */
export async function syncCommand(
  options: { allowEmpty?: boolean; allowShrink?: boolean },
  command: Command,
): Promise<void> {
  const ctx = await commandContext(command);
  const res = await sync(ctx.config, { ...ctx, ...options });
  if (res.usedFallback) ctx.logger.warn(`synced from the fallback registry ${res.source}`);
}
