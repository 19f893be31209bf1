import type { Command } from "commander";
import { pullMany } from "../../ops/pull.js";
import { parseSpec } from "../../registry/resolve.js";
import { commandContext } from "../context.js";
import { result, throwFailures } from "../output.js";
import { withProgressView } from "../progress.js";

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
  const results = await withProgressView(ctx.quiet, (view) =>
    pullMany(ctx.config, specs, {
      outputDir: options.output,
      extract: options.extract,
      verify: options.verify,
      stallTimeoutMs: options.stallTimeout * 1000,
      lowSpeed: { bytesPerSecond: options.speedLimit, seconds: options.speedTime },
      concurrency: options.jobs,
      signal: ctx.signal,
      logger: view.logger,
      onProgress: (p) => view.update(p),
    }),
  );
  for (const r of results) {
    if (r.status === "fulfilled" && !options.json) result(r.value.path);
  }
  if (options.json) {
    const { printJson, pullJson } = await import("../json.js");
    printJson(await Promise.all(results.map((r, i) => pullJson(images[i]!, r, options.extract))));
  }
  throwFailures(results);
}
