import type { Command } from "commander";
import { AxError } from "../../errors.js";
import { pullMany } from "../../ops/pull.js";
import { parseSpec } from "../../registry/resolve.js";
import { commandContext } from "../context.js";
import { reportError, result } from "../output.js";
import { createProgressView } from "../progress.js";

/** `pull NAME[:VERSION]... [-o DIR] [--no-extract] [--verify] [--json]`. */
export async function pullCommand(
  images: string[],
  options: {
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
  const specs = images.map(parseSpec);
  const ctx = await commandContext(command);
  const view = createProgressView(ctx.quiet, images, ctx.signal);
  let results;
  try {
    results = await pullMany(ctx.config, specs, {
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
