import type { Command } from "commander";
import { publish, type PublishOptions } from "../../ops/publish.js";
import { formatSpec } from "../../registry/resolve.js";
import { commandContext } from "../context.js";
import { result } from "../output.js";
import { withProgressView } from "../progress.js";
import { openSigningKey } from "../password.js";

/** Options of `publish`, as commander parses them. */
export type PublishCommandOptions = Omit<
  PublishOptions,
  | "archive"
  | "version"
  | "config"
  | "chunkSize"
  | "signal"
  | "logger"
  | "env"
  | "onProgress"
  | "signingKey"
> & { imageVersion: string; key?: string };

/**
 * `publish ARCHIVE --name N --image-version V --arch A --description D [--released-at T]
 * (--to oci://HOST/REPO:TAG | --url URL) --registry-file FILE [--key KEY]`: prints the entry's URL
 * (pinned to the pushed manifest's digest with `--to`), showing the upload's progress as `pull`
 * shows its download's.
 */
export async function publishCommand(
  archive: string,
  options: PublishCommandOptions,
  command: Command,
): Promise<void> {
  const ctx = await commandContext(command);
  const { imageVersion, key, ...fields } = options;
  const signingKey = key === undefined ? undefined : await openSigningKey(key);
  const image = formatSpec({ name: fields.name, version: imageVersion });
  const published = await withProgressView(ctx.quiet, [image], ctx.signal, (view) =>
    publish({
      ...fields,
      archive,
      version: imageVersion,
      signingKey,
      config: ctx.config,
      signal: ctx.signal,
      logger: view.logger,
      onProgress: (p) => view.update(p),
    }),
  );
  result(published.entry.url);
}
