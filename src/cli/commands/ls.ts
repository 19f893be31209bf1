import type { Command } from "commander";
import { listImages } from "../../ops/ls.js";
import { openRegistry } from "../../ops/sync.js";
import { commandContext } from "../context.js";
import { formatTable } from "../format.js";

/** `ls [-v] [PATTERN]`. */
export async function lsCommand(
  pattern: string | undefined,
  options: { verbose?: boolean },
  command: Command,
): Promise<void> {
  const ctx = await commandContext(command);
  const images = await openRegistry(ctx.config, ctx);
  const rows = listImages(images, { pattern, verbose: options.verbose });
  if (rows.length === 0) {
    ctx.logger.info(pattern ? `no image matches "${pattern}"` : "the registry lists no images");
    return;
  }
  const cells = rows.map((r) => [
    r.name,
    !options.verbose && r.versions > 1 ? `${r.version} (${r.versions} versions)` : r.version,
    r.arch,
    r.description,
  ]);
  process.stdout.write(formatTable(["Name", "Version", "Architecture", "Description"], cells));
}
