import { stat } from "node:fs/promises";
import type { Command } from "commander";
import { AxError, UsageError, hasCode } from "../../errors.js";
import { checkRegistry } from "../../registry/check.js";
import { upsertImage } from "../../registry/edit.js";
import { hashFile } from "../../store/stamps.js";
import { commandContext } from "../context.js";
import { count } from "../human-readable.js";
import { result } from "../output.js";

/** Options of `registry add`. */
interface AddOptions {
  file: string;
  name: string;
  version: string;
  arch?: string;
  description?: string;
  url?: string;
  releasedAt?: string;
}

/** `registry add ARCHIVE --file FILE --name N --version V [--arch] [--description] [--url] [--released-at]`. */
export async function registryAddCommand(
  archive: string,
  options: AddOptions,
  command: Command,
): Promise<void> {
  const ctx = await commandContext(command);
  let sha256: string;
  try {
    // A FIFO or a device would be read forever.
    if (!(await stat(archive)).isFile()) throw new UsageError(`archive ${archive} is not a file`);
    sha256 = await hashFile(archive);
  } catch (err) {
    if (hasCode(err, "ENOENT") || (err instanceof AxError && hasCode(err.cause, "ENOENT")))
      throw new UsageError(`no such file: ${archive}`);
    throw err;
  }
  const { entry, action } = await upsertImage(options.file, {
    name: options.name,
    version: options.version,
    arch: options.arch,
    description: options.description,
    url: options.url,
    released_at: options.releasedAt,
    sha256,
  });
  ctx.logger.info(
    `${action} image ${entry.name}:${entry.version} in ${options.file} (sha256 ${entry.sha256})`,
  );
}

/** `registry check FILE|URL [--online]`: every problem on stdout, exit 1 when there is one. */
export async function registryCheckCommand(
  location: string,
  options: { online?: boolean },
  command: Command,
): Promise<void> {
  const ctx = await commandContext(command);
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
