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
  for (const r of res.registries) {
    if (r.via !== "fallback") continue;
    const which = res.registries.length > 1 ? `registry ${r.registry}: ` : "";
    ctx.logger.warn(`${which}synced from the fallback registry ${r.source}`);
  }
}
