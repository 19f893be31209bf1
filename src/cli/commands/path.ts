import type { Command } from "commander";
import { imagePath } from "../../ops/info.js";
import { parseSpec } from "../../registry/resolve.js";
import { commandContext } from "../context.js";
import { result } from "../output.js";

/** `path NAME[:VERSION]`: the extracted tree of an image already pulled. */
export async function pathCommand(
  image: string,
  _options: unknown,
  command: Command,
): Promise<void> {
  const spec = parseSpec(image);
  const ctx = await commandContext(command);
  const found = await imagePath(ctx.config, spec);
  if (found.stale !== undefined) ctx.logger.warn(found.stale);
  result(found.path);
}
