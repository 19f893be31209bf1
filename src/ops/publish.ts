/**
 * `publish` and `registry add`: put an image archive where users can pull it and record it in a
 * registry file. With an `oci://` destination the archive is pushed to that OCI registry and the
 * entry pins the manifest just pushed (`oci://HOST/REPOSITORY@sha256:...`, the tag noted in a
 * comment: a tag can be moved, the digest cannot); with a URL it is assumed to be served there
 * already. Either way the archive's sha256 is computed and the registry file gets the entry added
 * or updated (other entries, includes and comments kept), ready to commit: that last part alone
 * is `registry add` ({@link addImage}). Given a signing key, the registry file is re-signed once
 * written.
 */
import { stat } from "node:fs/promises";
import type { Config } from "../config/config.js";
import { AxError, UsageError, fsError, hasCode } from "../errors.js";
import { silentLogger, type Logger } from "../log.js";
import { upsertImage, type LineComments, type UpsertResult } from "../registry/edit.js";
import { formatSpec } from "../registry/resolve.js";
import { nameProblem, parseRfc3339 } from "../registry/rules.js";
import type { ImageEntry } from "../registry/types.js";
import type { SigningKey } from "../minisign.js";
import { hashFile } from "../store/stamps.js";
import { formatOciReference, parseOciReference } from "../transfer/oci/reference.js";
import type { PushResult } from "../transfer/oci/upload.js";
import type { PullProgress } from "./pull.js";
import { signRegistryFile, type SignResult } from "./sign.js";
import { requireNetwork } from "./offline.js";

/** Options of {@link addImage}: the archive, the registry file, and the entry's fields. */
export interface AddImageOptions {
  /** The archive file. */
  archive: string;
  /** The registry file to add the entry to (created when missing). */
  registryFile: string;
  /** Image name and version of the entry: an entry with both is updated, else one is added. */
  name: string;
  version: string;
  /** Required for a new image; an update keeps every field not given. */
  arch?: string;
  description?: string;
  /** Where the archive is served (required for a new image). */
  url?: string;
  /** RFC 3339 release time; a new entry gets the current time when absent. */
  releasedAt?: string;
  /** Re-sign the registry file with this key once it is written (`FILE.minisig`). */
  signingKey?: SigningKey;
  /** Told what is being done. */
  logger?: Logger;
}

/** What {@link addImage} did. */
export interface AddImageResult {
  /** The entry as written to the registry file. */
  entry: ImageEntry;
  /** What happened to the registry file. */
  action: UpsertResult["action"];
  /** With `signingKey`: the signature written. */
  signed?: SignResult;
}

/** Options of {@link publish}. */
export interface PublishOptions extends AddImageOptions {
  arch: string;
  description: string;
  /** Push the archive to this `oci://HOST/REPOSITORY:TAG` (exclusive with `url`). */
  to?: string;
  /** The archive is already served here; nothing is uploaded (exclusive with `to`). */
  url?: string;
  /** Insecure registries (plain HTTP) and offline mode (no push) from the configuration. */
  config?: Pick<Config, "insecureRegistries" | "offline">;
  /** Archives larger than this are uploaded in chunks of this size (default 4 MiB). */
  chunkSize?: number;
  /** Cancels the upload. */
  signal?: AbortSignal;
  /** Progress of the upload (phase `upload`, then `done`), as a pull reports its download. */
  onProgress?: (progress: PullProgress) => void;
  /** Environment for `DOCKER_CONFIG` (default `process.env`). */
  env?: Record<string, string | undefined>;
}

/** What {@link publish} did. */
export interface PublishResult extends AddImageResult {
  /** With `to`: the push (manifest digest, layer, whether the blob was sent). */
  push?: PushResult;
}

/** Checks the options a user can get wrong before anything is hashed or sent. */
function checkOptions(options: PublishOptions): void {
  if ((options.to === undefined) === (options.url === undefined)) {
    throw new UsageError(
      "publish needs exactly one of --to oci://HOST/REPOSITORY:TAG and --url URL",
    );
  }
  const problem =
    nameProblem(options.name, "name") ??
    nameProblem(options.version, "version") ??
    (options.arch.trim() === "" ? "arch is empty" : undefined) ??
    (options.description.trim() === "" ? "description is empty" : undefined) ??
    (options.releasedAt !== undefined && parseRfc3339(options.releasedAt) === undefined
      ? `released_at "${options.releasedAt}" is not an RFC 3339 date-time`
      : undefined);
  if (problem !== undefined) {
    throw new UsageError(`cannot publish image ${formatSpec(options)}: ${problem}`);
  }
}

/** The `--to` reference, parsed; it must name a tag (the manifest's digest is known only later). */
function destination(to: string) {
  let ref;
  try {
    ref = parseOciReference(to);
  } catch (err) {
    throw new UsageError((err as AxError).message, { cause: err });
  }
  if (ref.digest !== undefined) {
    throw new UsageError(`--to ${to}: publish to a tag, not a digest`, {
      hint: "the manifest's digest is only known once it is pushed",
    });
  }
  return ref;
}

/**
 * Size and sha256 of the archive; a missing file, or one that is not a regular file (a FIFO or a
 * device would be read forever), is a usage error naming it.
 */
async function describeArchive(path: string): Promise<{ size: number; sha256: string }> {
  try {
    const info = await stat(path);
    if (!info.isFile()) throw new UsageError(`archive ${path} is not a file`);
    return { size: info.size, sha256: await hashFile(path) };
  } catch (err) {
    if (hasCode(err, "ENOENT")) throw new UsageError(`archive ${path} does not exist`);
    throw fsError(err, "read", path);
  }
}

/**
 * Publishes an archive: hashes it, pushes it to `to` (blob, config and manifest) or takes `url`
 * as where it is served, then adds or updates its entry in `registryFile`.
 *
 * @throws UsageError for bad options or a missing archive; AxError naming the registry, file or
 *   URL at fault for everything else.
 */
export async function publish(options: PublishOptions): Promise<PublishResult> {
  checkOptions(options);
  const logger = options.logger ?? silentLogger;
  const ref = options.to === undefined ? undefined : destination(options.to);
  const file = await describeArchive(options.archive);
  if (ref === undefined) return addEntry(options, file.sha256, options.url);
  if (options.config) requireNetwork(options.config, "publish --to");
  const where = formatOciReference(ref);
  const image = formatSpec(options);
  logger.info(`${image}: pushing ${options.archive} (${file.size} bytes) to ${where}`);
  const { pushArchive } = await import("../transfer/oci/upload.js");
  const push = await pushArchive(ref, options.archive, file, {
    insecureRegistries: options.config?.insecureRegistries,
    chunkSize: options.chunkSize,
    signal: options.signal,
    logger,
    env: options.env,
    onProgress: (received, total) =>
      options.onProgress?.({ image, phase: "upload", received, total }),
  });
  options.onProgress?.({ image, phase: "done", received: 0 });
  logger.info(
    `${image}: ${where} ${push.uploaded ? "received" : "already had"} the archive; manifest ${push.manifestDigest}`,
  );
  const pinned = formatOciReference({ ...ref, tag: undefined, digest: push.manifestDigest });
  const comments = { url: `pushed as ${where}` };
  return { ...(await addEntry(options, file.sha256, pinned, comments)), push };
}

/**
 * `registry add`: hashes the archive, and adds its entry to `registryFile` or updates the entry
 * with that name and version there (only the lines of the values that change).
 *
 * @throws UsageError for a missing archive or a new image without arch, description and url;
 *   AxError naming the registry file when it cannot be read or written.
 */
export async function addImage(options: AddImageOptions): Promise<AddImageResult> {
  const { sha256 } = await describeArchive(options.archive);
  return addEntry(options, sha256, options.url);
}

/**
 * Adds or updates the entry of `options` with the archive's `sha256`, served at `url`, `comments`
 * at the end of their lines.
 */
async function addEntry(
  options: AddImageOptions,
  sha256: string,
  url: string | undefined,
  comments?: LineComments,
): Promise<AddImageResult> {
  const { entry, action } = await upsertImage(
    options.registryFile,
    {
      name: options.name,
      version: options.version,
      arch: options.arch,
      description: options.description,
      released_at: options.releasedAt,
      sha256,
      url,
    },
    comments,
  );
  const logger = options.logger ?? silentLogger;
  logger.info(
    `${action} image ${formatSpec(entry)} in ${options.registryFile} (sha256 ${entry.sha256})`,
  );
  const signed =
    options.signingKey === undefined
      ? undefined
      : await signRegistryFile(options.registryFile, options.signingKey, { logger });
  return { entry, action, signed };
}
