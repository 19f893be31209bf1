import type { Command } from "commander";
import { publish, type PublishOptions } from "../../ops/publish.js";
import { commandContext } from "../context.js";
import { result } from "../output.js";

/** Options of `publish`, as commander parses them. */
export type PublishCommandOptions = Omit<
  PublishOptions,
  "archive" | "config" | "chunkSize" | "signal" | "logger" | "env"
>;

/**
 * `publish ARCHIVE --name N --version V --arch A --description D [--released-at T]
 * (--to oci://HOST/REPO:TAG | --url URL) --registry-file FILE`: prints the entry's URL.
 */
export async function publishCommand(
  archive: string,
  options: PublishCommandOptions,
  command: Command,
): Promise<void> {
  const ctx = await commandContext(command);
  const { entry } = await publish({
    ...options,
    archive,
    config: ctx.config,
    signal: ctx.signal,
    logger: ctx.logger,
  });
  result(entry.url);
}
