import type { Command } from "commander";
import { AxError } from "../../errors.js";
import { pullMany } from "../../ops/pull.js";
import { UsageError } from "../../errors.js";
import { checkAgainstLock, lockedImages } from "../../ops/lock.js";
import { openRegistry } from "../../ops/open-registry.js";
import { lockFilePath, readLockFile } from "../../registry/lock-file.js";
import { formatSpec, parseSpec } from "../../registry/resolve.js";
import type { ImageEntry } from "../../registry/types.js";
import { commandContext, type Context } from "../context.js";
import { reportError, result } from "../output.js";
import { createProgressView } from "../progress.js";

/**
 * `pull [NAME[:VERSION]...] [--locked] [--lock FILE] [-o DIR] [--no-extract] [--verify] [--json]`.
 * With `--locked`, or without names while a lock file is present: the lock file's entries.
 */
export async function pullCommand(
  names: string[],
  options: {
    locked?: boolean;
    lock?: string;
    output?: string;
    extract: boolean;
    verify?: boolean;
    stallTimeout: number;
    speedLimit: number;
    speedTime: number;
    jobs: number;
    json?: boolean;
  },
  command: Command,
): Promise<void> {
  names.forEach(parseSpec);
  const ctx = await commandContext(command);
  const { images, registry } = await pullPlan(ctx, names, options);
  const view = await createProgressView(ctx.quiet);
  let results;
  try {
    results = await pullMany(ctx.config, images.map(parseSpec), {
      images: registry,
      outputDir: options.output,
      extract: options.extract,
      verify: options.verify,
      stallTimeoutMs: options.stallTimeout * 1000,
      lowSpeed: { bytesPerSecond: options.speedLimit, seconds: options.speedTime },
      concurrency: options.jobs,
      signal: ctx.signal,
      logger: view.logger,
      onProgress: (p) => view.update(p),
    });
  } finally {
    view.stop();
  }
  const failures: AxError[] = [];
  for (const r of results) {
    if (r.status === "fulfilled") {
      if (!options.json) result(r.value.path);
    } else if (r.reason instanceof AxError) failures.push(r.reason);
    else throw r.reason;
  }
  if (options.json) {
    const { printJson, pullJson } = await import("../json.js");
    printJson(await Promise.all(results.map((r, i) => pullJson(images[i]!, r, options.extract))));
  }
  if (failures.length === 1) throw failures[0];
  if (failures.length > 1) {
    for (const f of failures.slice(0, -1)) reportError(f);
    throw failures.at(-1);
  }
}

/**
 * What a pull takes: the images named and the store's registry (auto-synced), checked against the
 * lock file when there is one; or, with `--locked` or no names, the lock file's entries, which
 * need no registry.
 *
 * @throws UsageError for no names and no lock file; AxError when the lock file cannot be read or
 *   a registry disagrees with it.
 */
async function pullPlan(
  ctx: Context,
  names: string[],
  options: { locked?: boolean; lock?: string },
): Promise<{ images: string[]; registry: ImageEntry[] }> {
  const path = lockFilePath(options.lock, ctx.resolved.file);
  const locked = await readLockFile(path);
  if (options.locked || names.length === 0) {
    if (locked === undefined && !options.locked) {
      throw new UsageError("pull needs the images to pull", {
        hint: `name them (NAME or NAME:VERSION), or write a lock file (${path}) with \`axvisor-image lock\``,
      });
    }
    const registry = await lockedImages(ctx.config, path);
    return { images: names.length > 0 ? names : registry.map(formatSpec), registry };
  }
  const registry = await openRegistry(ctx.config, ctx);
  if (locked !== undefined) checkAgainstLock(registry, locked, ctx.config.registry);
  return { images: names, registry };
}
