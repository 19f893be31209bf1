import type { Command } from "commander";
import { ciKey, renderCiKey } from "../../ops/ci-key.js";
import { lockedImages } from "../../ops/lock.js";
import type { CiKeyFormat } from "../../ops/options.js";
import { lockFilePath } from "../../registry/lock-file.js";
import { parseSpec, resolveImage } from "../../registry/resolve.js";
import { commandContext } from "../context.js";
import { result } from "../output.js";

/** `ci-key [NAME[:VERSION]...] [--format github|gitlab|json] [--lock FILE]`. */
export async function ciKeyCommand(
  images: string[],
  options: { format: CiKeyFormat; lock?: string },
  command: Command,
): Promise<void> {
  const specs = images.map(parseSpec);
  const ctx = await commandContext(command);
  let entries;
  if (specs.length > 0) {
    const { openRegistry } = await import("../../ops/open-registry.js");
    const registry = await openRegistry(ctx.config, ctx);
    entries = specs.map((s) => resolveImage(registry, s));
  } else {
    entries = await lockedImages(ctx.config, lockFilePath(options.lock, ctx.resolved.file));
  }
  const key = ciKey(entries, ctx.config.localStorage);
  if (options.format !== "json") return result(...renderCiKey(key, options.format));
  const { printJson } = await import("../json.js");
  printJson(key);
}
