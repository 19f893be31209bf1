import type { Command } from "commander";
import { registryList } from "../../config/registries.js";
import { AxError, UsageError } from "../../errors.js";
import { checkAgainstLock, lockedImages } from "../../ops/lock.js";
import { treeFileOf } from "../../ops/info.js";
import { openRegistry } from "../../ops/open-registry.js";
import { pullMany, type PullResult } from "../../ops/pull.js";
import { defaultRootfs, expandAlias } from "../../registry/aliases.js";
import { lockFilePath, readLockFile } from "../../registry/lock-file.js";
import { formatSpec, parseSpec } from "../../registry/resolve.js";
import type { ImageEntry, ImageSpec } from "../../registry/types.js";
import { commandContext, type Context } from "../context.js";
import { result, throwFailures } from "../output.js";
import { withProgressView } from "../progress.js";

/** Options of `pull`. */
interface PullCommandOptions {
  locked?: boolean;
  lock?: string;
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

/** An image `pull` is asked for, with the label it is reported by. */
type Wanted = [label: string, spec: ImageSpec];

/**
 * The images named on the command line, each with the label it is reported by: the arguments as
 * given; with `--arch ARCH`, the aliases they are (`alpine` -> `rootfs-ARCH-alpine.img`), or,
 * without any, that architecture's default rootfs.
 */
function requested(images: string[], arch: string | undefined): Wanted[] {
  if (arch === undefined) return images.map((image) => [image, parseSpec(image)]);
  if (images.length === 0) {
    const spec = defaultRootfs(arch);
    return [[formatSpec(spec), spec]];
  }
  return images.map((image) => [image, expandAlias(parseSpec(image), arch)]);
}

/**
 * With `--locked`, each image named as it is locked: `NAME` becomes every locked `NAME:VERSION`,
 * so that it lands where `pull --locked` puts it (never over the tree of `NAME`).
 *
 * @throws AxError naming the first image the lock file (`path`) lacks.
 */
function asLocked(wanted: Wanted[], locked: readonly ImageEntry[], path: string): Wanted[] {
  return wanted.flatMap(([label, spec]): Wanted[] => {
    const entries = locked.filter(
      (e) => e.name === spec.name && (spec.version === undefined || e.version === spec.version),
    );
    if (entries.length === 0) {
      throw new AxError(`image ${formatSpec(spec)} is not in the lock file ${path}`, {
        hint: `lock it first: \`axvisor-image lock ${formatSpec(spec)}\``,
      });
    }
    return entries.map((e) => [label, { name: e.name, version: e.version }]);
  });
}

/** What `pull` prints for one image: its tree (or archive), or with `--file` the tree's file. */
function printed(pulled: PullResult, file: boolean | undefined): string {
  return file ? treeFileOf(pulled, pulled.image, pulled.entry.name) : pulled.path;
}

/**
 * `pull [NAME[:VERSION]...] [--arch ARCH] [--locked] [--lock FILE] [-o DIR] [--no-extract] [--file]
 * [--verify] [--json]`. With `--locked`, or without names while a lock file is present: the lock
 * file's entries.
 */
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
  requested(images, options.arch); // usage errors before any work
  const ctx = await commandContext(command);
  const { wanted, registry } = await pullPlan(ctx, images, options);
  const labels = wanted.map(([, spec]) => formatSpec(spec));
  const results = await withProgressView(ctx.quiet, labels, ctx.signal, (view) =>
    pullMany(
      ctx.config,
      wanted.map(([, spec]) => spec),
      {
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
      },
    ),
  );
  // A pulled image whose printed path cannot be found (`--file`) fails like one not pulled.
  const outcomes = results.map((r): PromiseSettledResult<unknown> => {
    if (r.status !== "fulfilled" || options.json) return r;
    try {
      result(printed(r.value, options.file));
      return r;
    } catch (err) {
      return { status: "rejected", reason: err };
    }
  });
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
  throwFailures(outcomes);
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
  options: { locked?: boolean; lock?: string; arch?: string },
): Promise<{ wanted: Wanted[]; registry: ImageEntry[] }> {
  const path = lockFilePath(options.lock, ctx.resolved.file);
  const locked = await readLockFile(path);
  const none = names.length === 0 && options.arch === undefined;
  if (options.locked || none) {
    if (locked === undefined && !options.locked) {
      throw new UsageError("pull needs an image name, or --arch ARCH", {
        hint: `e.g. \`axvisor-image pull qemu_aarch64_linux\` or \`axvisor-image pull --arch aarch64\`; or write a lock file (${path}) with \`axvisor-image lock\``,
      });
    }
    const registry = await lockedImages(ctx.config, path);
    if (none && registry.length === 0) {
      throw new AxError(`the lock file ${path} lists no images: nothing to pull`, {
        hint: "lock the images the job needs: `axvisor-image lock NAME[:VERSION]...`",
      });
    }
    const all = registry.map((entry): Wanted => [formatSpec(entry), entry]);
    return {
      wanted: none ? all : asLocked(requested(names, options.arch), registry, path),
      registry,
    };
  }
  const registry = await openRegistry(ctx.config, ctx);
  if (locked !== undefined)
    checkAgainstLock(registry, locked, registryList(ctx.config.registry).join(", "));
  return { wanted: requested(names, options.arch), registry };
}
