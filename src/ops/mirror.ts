/**
 * `mirror`: copy a registry's images into infrastructure a team already runs, and write the
 * registry file that serves them from there. The destination is a directory (archives under
 * `<version>/<name><ext>`, and a registry file whose URLs are relative, for any static web server
 * or object storage) or an OCI registry (`oci://HOST/REPO`: one repository `REPO/<name>` per
 * image, one tag per version, entries pointing at the pushed manifests by digest). Entries keep
 * their sha256: a pull from the mirror verifies the very bytes the original registry vouched for.
 *
 * What the destination already holds is not sent again (nor downloaded from the origin); the
 * rest passes through the store (a verified archive, resumable like any pull) and is copied or
 * pushed from there, a few images at a time.
 */
import { join, resolve } from "node:path";
import { mapSettled } from "../concurrency.js";
import type { Config } from "../config/config.js";
import { UsageError } from "../errors.js";
import { groupBy } from "../group-by.js";
import { silentLogger } from "../log.js";
import type { SigningKey } from "../minisign.js";
import { compareReleases, formatSpec, parseSpec, resolveImage } from "../registry/resolve.js";
import type { ImageEntry, ImageSpec } from "../registry/types.js";
import { count, isSchemeUrl } from "../text.js";
import { isOciUrl } from "../transfer/oci/reference.js";
import { directoryTarget } from "./mirror-dir.js";
import { ociTarget } from "./mirror-oci.js";
import { checkMirrorRegistry, writeMirrorRegistry } from "./mirror-registry.js";
import { requireNetwork } from "./offline.js";
import { openRegistry } from "./open-registry.js";
import { DEFAULT_PULL_CONCURRENCY, type OperationOptions } from "./options.js";
import { naming, pull, type PullOptions } from "./pull.js";
import { signRegistryFile, type SignResult } from "./sign.js";

/** Options of {@link mirror}. */
export interface MirrorOptions extends OperationOptions {
  /** Where to: a directory, or `oci://HOST[:PORT]/REPO`. */
  to: string;
  /** Which images: `NAME` (every version, or the newest with `latest`) or `NAME:VERSION`;
   *  default every image of the registry. */
  images?: (string | ImageSpec)[];
  /** Only the newest version of each name. */
  latest?: boolean;
  /** The registry file to write (default `<dir>/registry.toml` for a directory; required for
   *  an OCI registry). Entries of other images already in it are kept. */
  registryFile?: string;
  /** Images copied at once (default 3). */
  concurrency?: number;
  /** Archives larger than this are pushed to an OCI registry in chunks of this size. */
  chunkSize?: number;
  /** Progress of each image's download from the origin. */
  onProgress?: PullOptions["onProgress"];
  /** Environment for `DOCKER_CONFIG` (default `process.env`). */
  env?: Record<string, string | undefined>;
  /** Sign the registry file written (`FILE.minisig`), as `registry sign` does. */
  signingKey?: SigningKey;
}

/** What happened to one image. */
export interface MirroredImage {
  /** The image as `name:version`. */
  image: string;
  /** Its entry in the written registry file (the original's, with the mirror's URL). */
  entry: ImageEntry;
  /** False when the destination had it already (nothing downloaded nor sent). */
  copied: boolean;
}

/** What {@link mirror} did. */
export interface MirrorResult {
  /** The registry file written (absolute). */
  registryFile: string;
  /** Each chosen image, in registry order: mirrored, or the reason it was not. */
  images: PromiseSettledResult<MirroredImage>[];
  /** With `signingKey`: the signature written beside the registry file. */
  signed?: SignResult;
}

/**
 * A destination: where an entry's copy is, whether it is there already, and how to put it there
 * from a verified archive.
 */
export interface MirrorTarget {
  /** Checks everything that can be checked before any image moves (names, reachability). */
  prepare(entries: readonly ImageEntry[]): Promise<void>;
  /** The mirror's URL of `entry` when the destination holds its archive already. */
  present(entry: ImageEntry, signal: AbortSignal | undefined): Promise<string | undefined>;
  /** Puts the verified archive at `archive` there; returns the mirror's URL of `entry`. */
  put(entry: ImageEntry, archive: string, signal: AbortSignal | undefined): Promise<string>;
}

/**
 * The entries `specs` choose (every entry without specs), newest only with `latest`: `NAME` is
 * every version of it, `NAME:VERSION` that one. Registry order, each entry once.
 *
 * @throws AxError naming an image or version the registry does not have.
 */
export function chooseImages(
  images: ImageEntry[],
  specs: readonly ImageSpec[],
  latest: boolean,
): ImageEntry[] {
  const chosen = new Set<ImageEntry>();
  for (const spec of specs) {
    const entry = resolveImage(images, spec); // fails naming an unknown image or version
    if (spec.version !== undefined) chosen.add(entry);
    else images.filter((image) => image.name === spec.name).forEach((image) => chosen.add(image));
  }
  let entries = specs.length === 0 ? images : images.filter((image) => chosen.has(image));
  if (latest) {
    const newest = new Set(
      [...groupBy(entries, (image) => image.name).values()].map((versions) =>
        versions.reduce((best, image) => (compareReleases(image, best) > 0 ? image : best)),
      ),
    );
    entries = entries.filter((image) => newest.has(image));
  }
  return entries;
}

function missingRegistryFile(to: string): never {
  throw new UsageError(`mirror --to ${to} needs --registry-file FILE`, {
    hint: "the registry file is where the mirrored entries are written",
  });
}

/**
 * Mirrors the chosen images to `options.to` and writes the registry file that serves them from
 * there (with the images that made it, even when others failed: a run again does the rest).
 *
 * @throws UsageError for a bad destination or a missing `registryFile` with an OCI registry;
 *   AxError naming the image, file or URL at fault before anything moved (an unknown image, an
 *   unreachable registry); the failures of single images are in the result.
 */
export async function mirror(config: Config, options: MirrorOptions): Promise<MirrorResult> {
  const logger = options.logger ?? silentLogger;
  const specs = (options.images ?? []).map((s) => (typeof s === "string" ? parseSpec(s) : s));
  const oci = isOciUrl(options.to);
  // Any other URL would be taken as a relative path: a folder named `https:` in the working directory.
  if (!oci && (options.to === "" || isSchemeUrl(options.to))) {
    throw new UsageError(`mirror --to ${options.to || '""'}: give a directory or oci://HOST/REPO`, {
      hint: "a web server's directory is mirrored to locally, then served (or synced) from there",
    });
  }
  if (
    options.registryFile !== undefined &&
    (options.registryFile === "" || isSchemeUrl(options.registryFile))
  ) {
    throw new UsageError(
      `mirror --registry-file ${options.registryFile || '""'}: give the path of a file to write`,
      { hint: "write it here, then publish it where users sync from" },
    );
  }
  // A directory can be filled from the store alone; an OCI registry is on the network.
  if (oci) requireNetwork(config, "mirror --to oci://");
  const registryFile = resolve(
    options.registryFile ??
      (oci ? missingRegistryFile(options.to) : join(options.to, "registry.toml")),
  );
  const target = oci
    ? await ociTarget(options.to, {
        insecureRegistries: config.insecureRegistries,
        chunkSize: options.chunkSize,
        signal: options.signal,
        logger,
        env: options.env,
        store: config.localStorage,
      })
    : directoryTarget(options.to, registryFile);
  const images = await openRegistry(config, options);
  const entries = chooseImages(images, specs, options.latest ?? false);
  await checkMirrorRegistry(registryFile);
  await target.prepare(entries);
  const one = async (
    entry: ImageEntry,
    signal: AbortSignal | undefined,
  ): Promise<MirroredImage> => {
    const image = formatSpec(entry);
    const url = await target.present(entry, signal);
    if (url !== undefined) {
      logger.info(`${image}: already in ${options.to}`);
      return { image, entry: { ...entry, url }, copied: false };
    }
    const spec = { name: entry.name, version: entry.version };
    const pulled = await pull(config, spec, {
      images,
      extract: false,
      signal,
      logger,
      onProgress: options.onProgress,
    });
    const copied = await target.put(entry, pulled.archive, signal);
    logger.info(`${image}: copied to ${copied}`);
    return { image, entry: { ...entry, url: copied }, copied: true };
  };
  const results = await mapSettled(
    entries,
    options.concurrency ?? DEFAULT_PULL_CONCURRENCY,
    (entry, signal) => one(entry, signal).catch(naming(formatSpec(entry))),
    options.signal,
  );
  const done = results.flatMap((r) => (r.status === "fulfilled" ? [r.value.entry] : []));
  const written = await writeMirrorRegistry(registryFile, done);
  logger.info(`wrote ${count(done.length, "image")} to ${written}`);
  const signed =
    options.signingKey === undefined
      ? undefined
      : await signRegistryFile(written, options.signingKey, { logger });
  return { registryFile: written, images: results, signed };
}
