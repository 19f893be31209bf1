import type { Command } from "commander";
import { prune, type PruneReason } from "../../ops/prune.js";
import { commandContext } from "../context.js";
import { formatBytes } from "../human-readable.js";
import { count } from "../../text.js";
import { result } from "../output.js";

const REASONS: Record<PruneReason, string> = {
  orphan: "no registry entry",
  "old-version": "older version",
  part: "interrupted download",
  staging: "interrupted extraction",
  trash: "interrupted removal",
  upload: "interrupted upload",
};

/** `prune [--dry-run] [--keep N]`. */
export async function pruneCommand(
  options: { dryRun?: boolean; keep?: number },
  command: Command,
): Promise<void> {
  const ctx = await commandContext(command);
  const dryRun = Boolean(options.dryRun);
  const pruned = await prune(ctx.config, { ...ctx, dryRun, keep: options.keep });
  const verb = dryRun ? "would remove" : "removed";
  for (const item of pruned.removed) {
    result(
      `${verb}  ${formatBytes(item.bytes).padStart(10)}  ${item.path}  (${REASONS[item.reason]})`,
    );
  }
  const items = count(pruned.removed.length, "item");
  result(`${dryRun ? "would free" : "freed"} ${formatBytes(pruned.freed)} (${items})`);
}
