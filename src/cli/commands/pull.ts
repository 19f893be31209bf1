import type { Command } from "commander";
import { AxError, UsageError } from "../../errors.js";
import { treeFileOf } from "../../ops/info.js";
import { pullMany, type PullResult } from "../../ops/pull.js";
import { defaultRootfs, expandAlias } from "../../registry/aliases.js";
import { formatSpec, parseSpec } from "../../registry/resolve.js";
import type { ImageSpec } from "../../registry/types.js";
import { commandContext } from "../context.js";
import { reportError, result } from "../output.js";
import { createProgressView } from "../progress.js";

/** Options of `pull`. */
interface PullCommandOptions {
  output?: string;
  extract: boolean;
  verify?: boolean;
  arch?: string;
  file?: boolean;
  stallTimeout: number;
  speedLimit: number;
  speedTime: number;
  jobs: number;
  json?: boolean;
}

/**
 * The images `pull` is asked for, each with the label it is reported by: the arguments as given;
 * with `--arch ARCH`, the aliases they are (`alpine` -> `rootfs-ARCH-alpine.img`), or, without
 * any, that architecture's default rootfs.
 */
function requested(images: string[], arch: string | undefined): [string, ImageSpec][] {
  if (arch === undefined) {
    if (images.length === 0) {
      throw new UsageError("pull needs an image name, or --arch ARCH", {
        hint: "e.g. `axvisor-image pull qemu_aarch64_linux` or `axvisor-image pull --arch aarch64`",
      });
    }
    return images.map((image) => [image, parseSpec(image)]);
  }
  if (images.length === 0) {
    const spec = defaultRootfs(arch);
    return [[formatSpec(spec), spec]];
  }
  return images.map((image) => [image, expandAlias(parseSpec(image), arch)]);
}

/** What `pull` prints for one image: its tree (or archive), or with `--file` the tree's file. */
function printed(pulled: PullResult, file: boolean | undefined): string {
  return file ? treeFileOf(pulled, pulled.image, pulled.entry.name) : pulled.path;
}

/** `pull [NAME[:VERSION]...] [--arch ARCH] [-o DIR] [--no-extract] [--file] [--verify] [--json]`. */
export async function pullCommand(
  images: string[],
  options: PullCommandOptions,
  command: Command,
): Promise<void> {
  if (options.file && !options.extract) {
    throw new UsageError(
      "--file prints a file of the extracted tree: it cannot go with --no-extract",
    );
  }
  const wanted = requested(images, options.arch);
  const ctx = await commandContext(command);
  const view = await createProgressView(ctx.quiet);
  let results;
  try {
    results = await pullMany(
      ctx.config,
      wanted.map(([, spec]) => spec),
      {
        outputDir: options.output,
        extract: options.extract,
        verify: options.verify,
        stallTimeoutMs: options.stallTimeout * 1000,
        lowSpeed: { bytesPerSecond: options.speedLimit, seconds: options.speedTime },
        concurrency: options.jobs,
        signal: ctx.signal,
        logger: view.logger,
        onProgress: (p) => view.update(p),
      },
    );
  } finally {
    view.stop();
  }
  const failures: AxError[] = [];
  for (const r of results) {
    if (r.status === "fulfilled") {
      if (options.json) continue;
      try {
        result(printed(r.value, options.file));
      } catch (err) {
        failures.push(err as AxError);
      }
    } else if (r.reason instanceof AxError) failures.push(r.reason);
    else throw r.reason;
  }
  if (options.json) {
    const [{ printJson, pullJson }, { readProvenance }] = await Promise.all([
      import("../json.js"),
      import("../../store/provenance.js"),
    ]);
    const provenance = await readProvenance(ctx.config.localStorage);
    printJson(
      await Promise.all(
        results.map((r, i) => pullJson(wanted[i]![0], r, options.extract, provenance)),
      ),
    );
  }
  if (failures.length === 1) throw failures[0];
  if (failures.length > 1) {
    for (const f of failures.slice(0, -1)) reportError(f);
    throw failures.at(-1);
  }
}
