import type { Command } from "commander";
import { mirror } from "../../ops/mirror.js";
import { parseSpec } from "../../registry/resolve.js";
import { commandContext } from "../context.js";
import { openSigningKey } from "../password.js";
import { result, throwFailures } from "../output.js";
import { withProgressView } from "../progress.js";

/**
 * `mirror [NAME[:VERSION]...] --to DIR|oci://HOST/REPO [--registry-file FILE] [--latest] [--key KEY]
 * [-j N]`: prints the registry file written (signed with `--key`); fails (after writing it with the images that made it) when
 * an image could not be mirrored.
 */
export async function mirrorCommand(
  images: string[],
  options: { to: string; registryFile?: string; latest?: boolean; key?: string; jobs: number },
  command: Command,
): Promise<void> {
  const specs = images.map(parseSpec);
  const ctx = await commandContext(command);
  const signingKey = options.key === undefined ? undefined : await openSigningKey(options.key);
  const outcome = await withProgressView(ctx.quiet, images, ctx.signal, (view) =>
    mirror(ctx.config, {
      to: options.to,
      images: specs,
      latest: options.latest,
      registryFile: options.registryFile,
      signingKey,
      concurrency: options.jobs,
      signal: ctx.signal,
      logger: view.logger,
      onProgress: (p) => view.update(p),
    }),
  );
  result(outcome.registryFile);
  throwFailures(outcome.images);
}
