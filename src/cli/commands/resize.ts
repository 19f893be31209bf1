import type { Command } from "commander";
import { resizeImage } from "../../ops/resize.js";
import { commandContext } from "../context.js";
import { formatBytes } from "../human-readable.js";
import { result } from "../output.js";

/** `resize IMAGE_FILE --size-mib N [-o OUT]`: prints the grown image's path. */
export async function resizeCommand(
  file: string,
  options: { sizeMib: number; output?: string },
  command: Command,
): Promise<void> {
  const ctx = await commandContext(command);
  const resized = await resizeImage(file, {
    sizeMiB: options.sizeMib,
    output: options.output,
    signal: ctx.signal,
    logger: ctx.logger,
  });
  if (resized.toBytes === resized.fromBytes) {
    ctx.logger.info(`${file} is already ${formatBytes(resized.toBytes)}: nothing to grow`);
  } else {
    ctx.logger.info(
      `grew ${resized.path} from ${formatBytes(resized.fromBytes)} to ${formatBytes(resized.toBytes)}`,
    );
  }
  result(resized.path);
}
