/**
 * `mirror --to oci://HOST/REPO`: image `NAME` version `V` goes to repository `REPO/<name>` (in
 * lower case, as OCI wants) with tag `V` (a `+` becomes `_`, which tags cannot hold), pushed as
 * `publish` pushes (blobs the repository has are not sent again), and its entry points at the
 * pushed manifest by digest (`oci://HOST/REPO/name:V@sha256:...`): what a pull gets cannot
 * change under it, whoever moves the tag. A cut upload resumes from the last chunk the registry
 * acknowledged (its location is kept in the store's bookkeeping).
 */
import { rm, stat } from "node:fs/promises";
import { AxError, UsageError, fsError } from "../errors.js";
import { namedLogger, type Logger } from "../log.js";
import { formatSpec } from "../registry/resolve.js";
import type { ImageEntry } from "../registry/types.js";
import {
  formatOciReference,
  parseOciReference,
  type OciReference,
} from "../transfer/oci/reference.js";
import { uploadSessionPath } from "../store/layout.js";
import { readOptionalJson, writeOptionalJson } from "../store/optional-file.js";

/** A saved upload session is one URL; anything bigger is not one. */
const MAX_SESSION_BYTES = 64 * 1024;
import type { UploadSession } from "../transfer/oci/upload.js";
import type { MirrorTarget } from "./mirror.js";

/** Options of {@link ociTarget}. */
export interface OciTargetOptions {
  insecureRegistries: readonly string[];
  chunkSize?: number;
  signal?: AbortSignal;
  logger: Logger;
  env?: Record<string, string | undefined>;
  /** The store (where cut uploads are remembered). */
  store: string;
}

/** `to` as a repository: `oci://HOST/REPO` with neither a tag nor a digest. */
function repositoryOf(to: string): OciReference {
  let ref: OciReference;
  try {
    ref = parseOciReference(to);
  } catch (err) {
    throw new UsageError((err as AxError).message, { cause: err });
  }
  const path = to.slice("oci://".length);
  if (/[:@]/.test(path.slice(path.indexOf("/") + 1))) {
    throw new UsageError(`--to ${to}: name a repository (oci://HOST/REPO), not a tag or digest`, {
      hint: "each image gets its own repository below it, and a tag per version",
    });
  }
  return ref;
}

/**
 * The upload sessions of the store `dir` for pushes to `repository` (`host/repository`): one
 * small file per repository and blob in its bookkeeping (`.axvisor-image/uploads/`), where a cut
 * upload goes on. Losing one only costs sending the blob again.
 */
export function uploadSessions(dir: string, repository: string): UploadSession {
  const file = (digest: string) => uploadSessionPath(dir, repository, digest);
  return {
    async load(digest) {
      try {
        const saved = (await readOptionalJson(file(digest), MAX_SESSION_BYTES)) as
          { location?: unknown } | undefined;
        return typeof saved?.location === "string" ? saved.location : undefined;
      } catch {
        return undefined; // none, or unreadable: a new upload
      }
    },
    save: (digest, location) => writeOptionalJson(file(digest), { location }),
    async clear(digest) {
      await rm(file(digest), { force: true });
    },
  };
}

/** The mirror target that is the OCI repository `to`. */
export async function ociTarget(to: string, options: OciTargetOptions): Promise<MirrorTarget> {
  const base = repositoryOf(to);
  const [{ checkRegistryAnswers, taggedArchive }, { pushArchive }] = await Promise.all([
    import("../transfer/oci/target.js"),
    import("../transfer/oci/upload.js"),
  ]);
  const client = (signal: AbortSignal | undefined) => ({
    insecureRegistries: options.insecureRegistries,
    signal,
    logger: options.logger,
    env: options.env,
  });
  const refOf = (entry: ImageEntry): OciReference => {
    const tag = entry.version.replaceAll("+", "_");
    const url = `oci://${base.host}/${base.repository}/${entry.name.toLowerCase()}:${tag}`;
    try {
      return parseOciReference(url);
    } catch (err) {
      throw new UsageError(
        `cannot mirror image ${formatSpec(entry)} to ${to}: ${(err as AxError).message}`,
        { cause: err },
      );
    }
  };
  const pinned = (ref: OciReference, digest: string) => formatOciReference({ ...ref, digest });
  return {
    async prepare(entries) {
      const seen = new Map<string, ImageEntry>();
      for (const entry of entries) {
        const where = formatOciReference(refOf(entry));
        const other = seen.get(where);
        if (other !== undefined) {
          throw new UsageError(
            `images ${formatSpec(other)} and ${formatSpec(entry)} would both be ${where}`,
            { hint: "mirror them to different repositories" },
          );
        }
        seen.set(where, entry);
      }
      await checkRegistryAnswers(base, client(options.signal));
    },
    async present(entry, signal) {
      const ref = refOf(entry);
      const digest = await taggedArchive(ref, entry, client(signal));
      return digest === undefined ? undefined : pinned(ref, digest);
    },
    async put(entry, archive, signal) {
      const ref = refOf(entry);
      let size: number;
      try {
        size = (await stat(archive)).size;
      } catch (err) {
        throw fsError(err, "read", archive);
      }
      const pushed = await pushArchive(
        ref,
        archive,
        { sha256: entry.sha256, size },
        {
          ...client(signal),
          logger: namedLogger(options.logger, formatSpec(entry)),
          chunkSize: options.chunkSize,
          session: uploadSessions(options.store, `${ref.host}/${ref.repository}`),
        },
      );
      return pinned(ref, pushed.manifestDigest);
    },
  };
}
