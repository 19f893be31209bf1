import type { Command } from "commander";
import { imagePath, treeFileOf } from "../../ops/info.js";
import { parseSpec } from "../../registry/resolve.js";
import { commandContext } from "../context.js";
import { result } from "../output.js";

/**
 * `path NAME[:VERSION] [--file]`: the extracted tree of an image already pulled, or with `--file`
 * the file named like the image in it (a single-file archive's file, such as a rootfs `.img`).
 */
export async function pathCommand(
  image: string,
  options: { file?: boolean },
  command: Command,
): Promise<void> {
  const spec = parseSpec(image);
  const ctx = await commandContext(command);
  const found = await imagePath(ctx.config, spec);
  if (found.stale !== undefined) ctx.logger.warn(found.stale);
  result(options.file ? treeFileOf(found, image, spec.name) : found.path);
}
