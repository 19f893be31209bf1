/**
 * OCI registries as an image source: an `oci://HOST/REPOSITORY:TAG` (or `@sha256:DIGEST`) entry
 * resolves to its manifest, the manifest to the archive layer, and the layer's blob is streamed
 * through the same resumable download as any http(s) URL. Mirrors rewrite `oci://` URLs like any
 * other, so a pull-through cache (`oci://ghcr.io/` = `oci://mirror.example.org/ghcr/`) is tried
 * first. The layer's digest must be the registry entry's sha256.
 */
import { access } from "node:fs/promises";
import { join } from "node:path";
import type { Config } from "../../config/config.js";
import { ChecksumError } from "../../errors.js";
import type { Logger } from "../../log.js";
import { archiveNames, imageBaseName } from "../../store/layout.js";
import { readMarker } from "../../store/copies.js";
import type { ImageEntry, ImageSpec } from "../../registry/types.js";
import type { DownloadCandidate, HttpSource } from "../download.js";
import { TransferError } from "../http.js";
import { candidateUrls } from "../../config/mirrors.js";
import { OciClient } from "./client.js";
import { fetchManifest, layerTitle, pickArchiveLayer, type Descriptor } from "./manifest.js";
import { isOciUrl, parseOciReference } from "./reference.js";

/** What the OCI side of a pull needs to know. */
export interface OciPullContext {
  /** The image as asked for (`name` or `name:version`), for messages. */
  image: string;
  /** The registry entry being pulled. */
  entry: ImageEntry;
  /** Mirrors and insecure registries. */
  config: Pick<Config, "mirrors" | "insecureRegistries">;
  /** Cancels every request. */
  signal?: AbortSignal;
  /** Told about retries. */
  logger?: Logger;
  /** Retries of failing registry requests (default `DEFAULT_RETRIES`). */
  retries?: number;
  /** No byte for this long: abandon a request (ms, default `DEFAULT_STALL_TIMEOUT_MS`). */
  stallTimeoutMs?: number;
}

/** The archive layer an `oci://` URL names, and where its blob is. */
export interface ResolvedLayer {
  /** The layer's descriptor. */
  layer: Descriptor;
  /** Its `org.opencontainers.image.title`, if any. */
  title: string | undefined;
  /** The blob's URL, with the authorization to fetch it and a way to renew it. */
  source: HttpSource;
}

/**
 * Resolves `url` (an `oci://` reference) to its archive layer. A layer whose digest is not the
 * entry's sha256 is a {@link ChecksumError} naming the image when `url` is the entry's own URL,
 * and a {@link TransferError} (try the next candidate) when it is a mirror's.
 */
async function resolveLayer(
  url: string,
  context: OciPullContext,
  isOriginal: boolean,
): Promise<ResolvedLayer> {
  const client = new OciClient(parseOciReference(url), "pull", {
    insecureRegistries: context.config.insecureRegistries,
    signal: context.signal,
    logger: context.logger,
    retries: context.retries,
    stallTimeoutMs: context.stallTimeoutMs,
    failFastWhenUnreachable: !isOriginal,
  });
  const { manifest } = await fetchManifest(client);
  const layer = pickArchiveLayer(manifest, url);
  const expected = `sha256:${context.entry.sha256}`;
  if (layer.digest !== expected) {
    if (!isOriginal) {
      throw new TransferError(url, `holds layer ${layer.digest}, not the entry's ${expected}`, {
        retryable: false,
      });
    }
    throw new ChecksumError(
      `checksum mismatch for image ${context.image}: expected ${context.entry.sha256}, ` +
        `but ${url} holds layer ${layer.digest}`,
      { hint: "the registry entry or the image in the OCI registry is wrong; nothing was kept" },
    );
  }
  return {
    layer,
    title: layerTitle(layer),
    source: {
      url: client.url(`blobs/${layer.digest}`),
      headers: client.authHeaders(),
      reauthorize: (challenge) => client.authorize(challenge),
    },
  };
}

/**
 * The candidates to download the entry from: its URL rewritten by each matching mirror, then the
 * URL itself. `oci://` candidates resolve their manifest when their turn comes; others are URLs.
 */
export function downloadCandidates(context: OciPullContext): (string | DownloadCandidate)[] {
  const urls = candidateUrls(context.entry.url, context.config.mirrors);
  return urls.map((url, index) => {
    if (!isOciUrl(url)) return url;
    const isOriginal = index === urls.length - 1;
    return {
      name: url,
      resolve: async (signal) =>
        (await resolveLayer(url, { ...context, signal: signal ?? context.signal }, isOriginal))
          .source,
    };
  });
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

/**
 * The file name that gives an `oci://` entry's archive its extension (for `imagePaths`), or
 * undefined when the URL names it. Network only when a download is likely: an archive a previous
 * pull left in `dir` keeps its name, and a tree whose marker matches needs no name; otherwise the
 * layer title comes from the first candidate whose manifest answers at once (no retries: when
 * none does, the default name is used and the download itself reports the failure).
 */
export async function ociArchiveTitle(
  dir: string,
  spec: ImageSpec,
  context: OciPullContext,
): Promise<string | undefined> {
  if (!isOciUrl(context.entry.url)) return undefined;
  const baseName = imageBaseName(spec);
  for (const archive of archiveNames(baseName)) {
    if (await exists(join(dir, archive))) return archive;
  }
  if ((await readMarker(join(dir, baseName))) === context.entry.sha256) return undefined;
  const urls = candidateUrls(context.entry.url, context.config.mirrors);
  for (const [index, url] of urls.entries()) {
    if (!isOciUrl(url)) continue;
    try {
      const isOriginal = index === urls.length - 1;
      return (await resolveLayer(url, { ...context, retries: 0 }, isOriginal)).title;
    } catch (err) {
      if (!(err instanceof TransferError)) throw err;
    }
  }
  return undefined;
}
