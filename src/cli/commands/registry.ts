import type { Command } from "commander";
import { AxError } from "../../errors.js";
import { addImage } from "../../ops/publish.js";
import { requireNetwork } from "../../ops/offline.js";
import { checkRegistry } from "../../registry/check.js";
import { isRemote, toLocation } from "../../registry/location.js";
import { commandContext } from "../context.js";
import { count } from "../human-readable.js";
import { result } from "../output.js";

/** Options of `registry add`, as commander parses them. */
interface AddOptions {
  file: string;
  name: string;
  imageVersion: string;
  arch?: string;
  description?: string;
  url?: string;
  releasedAt?: string;
}

/**
 * `registry add ARCHIVE --file FILE --name N --image-version V [--arch] [--description] [--url]
 * [--released-at]`.
 */
export async function registryAddCommand(
  archive: string,
  options: AddOptions,
  command: Command,
): Promise<void> {
  const ctx = await commandContext(command);
  const { file, imageVersion, ...fields } = options;
  await addImage({
    ...fields,
    archive,
    registryFile: file,
    version: imageVersion,
    logger: ctx.logger,
  });
}

/** `registry check FILE|URL [--online]`: every problem on stdout, exit 1 when there is one. */
export async function registryCheckCommand(
  location: string,
  options: { online?: boolean },
  command: Command,
): Promise<void> {
  const ctx = await commandContext(command);
  if (options.online || isRemote(toLocation(location))) {
    requireNetwork(ctx.config, `checking ${location}`);
  }
  const report = await checkRegistry(location, {
    online: options.online,
    signal: ctx.signal,
    logger: ctx.logger,
  });
  for (const problem of report.problems) result(problem);
  const summary = `${count(report.images, "image")} in ${count(report.files.length, "file")}`;
  if (report.problems.length > 0) {
    throw new AxError(
      `registry ${location}: ${count(report.problems.length, "problem")} (${summary})`,
    );
  }
  result(`registry ${location}: no problems (${summary})`);
}
