import type { Command } from "commander";
import { storeUsage } from "../../ops/du.js";
import { commandContext } from "../context.js";
import { formatBytes, formatTable } from "../human-readable.js";
import { count } from "../../text.js";
import { result } from "../output.js";

/** `du [--json]` (also `ls --local`): what the store holds and its size. */
export async function duCommand(options: { json?: boolean }, command: Command): Promise<void> {
  const ctx = await commandContext(command);
  const usage = await storeUsage(ctx.config);
  if (options.json) {
    const { printJson, storeJson } = await import("../json.js");
    printJson(storeJson(usage));
    return;
  }
  const size = (bytes: number, present: unknown) =>
    present === undefined ? "-" : formatBytes(bytes);
  if (usage.images.length > 0) {
    const rows = usage.images.map((i) => [
      i.orphan ? `${i.image} (orphan)` : i.image,
      i.version ?? "?",
      size(i.archiveBytes, i.archive),
      size(i.treeBytes, i.tree),
      formatBytes(i.archiveBytes + i.treeBytes),
    ]);
    result(...formatTable(["Image", "Version", "Archive", "Tree", "Total"], rows));
  } else {
    ctx.logger.info(`the store ${usage.store} holds no images`);
  }
  if (usage.leftovers.length > 0) {
    const bytes = usage.leftovers.reduce((sum, l) => sum + l.bytes, 0);
    result(
      `leftovers of interrupted work: ${formatBytes(bytes)} in ${count(usage.leftovers.length, "item")} ` +
        "(`axvisor-image prune` removes them)",
    );
  }
  const where = usage.extractDir ? `${usage.store} and ${usage.extractDir}` : usage.store;
  result(`total: ${formatBytes(usage.totalBytes)} in ${where}`);
}
