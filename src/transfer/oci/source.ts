/**
 * OCI registries as a source: an `oci://HOST/REPOSITORY:TAG` (or `@sha256:DIGEST`) URL resolves
 * to its manifest, the manifest to the archive layer, and the layer's blob is fetched as an
 * http(s) source (resumed, retried, its token renewed when it expires). Mirrors rewrite `oci://`
 * URLs like any other, so a pull-through cache is tried first. When the file's sha256 is known,
 * the layer's digest must be it: checked against the manifest before a byte of the blob comes.
 */
import { ChecksumError } from "../../errors.js";
import { TransferError } from "../http.js";
import { httpSource } from "../http-source.js";
import type { Source, SourceOptions } from "../sources.js";
import { OciClient } from "./client.js";
import { fetchManifest, layerTitle as titleOf, pickArchiveLayer } from "./manifest.js";
import { isOciUrl, parseOciReference } from "./reference.js";

/** The archive layer an `oci://` URL names. */
interface ResolvedLayer {
  /** Its `org.opencontainers.image.title`, if any. */
  title: string | undefined;
  /** Its blob, with the authorization to fetch it and a way to renew it. */
  blob: Source;
}

/**
 * Resolves `url` (an `oci://` reference) to its archive layer. A layer whose digest is not the
 * file's sha256 is a {@link ChecksumError} naming the file when `url` is the original, and a
 * {@link TransferError} (try the next source) when it is a mirror's.
 */
async function resolveLayer(
  url: string,
  options: SourceOptions,
  isOriginal: boolean,
): Promise<ResolvedLayer> {
  const client = new OciClient(parseOciReference(url), "pull", {
    insecureRegistries: options.insecureRegistries,
    signal: options.signal,
    logger: options.logger,
    retries: options.retries,
    stallTimeoutMs: options.stallTimeoutMs,
    failFastWhenUnreachable: !isOriginal,
  });
  const { manifest } = await fetchManifest(client);
  const layer = pickArchiveLayer(manifest, url);
  const { sha256, what } = options.integrity ?? {};
  const expected = `sha256:${sha256}`;
  if (sha256 !== undefined && layer.digest !== expected) {
    if (!isOriginal) {
      throw new TransferError(url, `holds layer ${layer.digest}, not the entry's ${expected}`, {
        retryable: false,
      });
    }
    throw new ChecksumError(
      `checksum mismatch for ${what}: expected ${sha256}, but ${url} holds layer ${layer.digest}`,
      { hint: "the registry entry or the image in the OCI registry is wrong; nothing was kept" },
    );
  }
  return {
    title: titleOf(layer),
    blob: httpSource(client.url(`blobs/${layer.digest}`), {
      headers: client.authHeaders(),
      reauthorize: (challenge) => client.authorize(challenge),
    }),
  };
}

/**
 * The `oci://` URL `url` as a {@link Source}: its manifest is fetched when the download first
 * opens it, then its layer's blob serves the bytes. `isOriginal`: `url` is the registry entry's
 * own URL, not a mirror's.
 */
export function ociSource(url: string, options: SourceOptions, isOriginal: boolean): Source {
  let blob: Source | undefined;
  return {
    name: url,
    async open(request) {
      const signal = request.signal ?? options.signal;
      blob ??= (await resolveLayer(url, { ...options, signal }, isOriginal)).blob;
      return blob.open(request);
    },
  };
}

/**
 * The layer title of the first `oci://` URL of `urls` (mirrors first, the original last) whose
 * manifest answers at once (no retries); undefined when none does (the download itself then
 * reports the failure).
 */
export async function layerTitle(
  urls: readonly string[],
  options: SourceOptions,
): Promise<string | undefined> {
  for (const [index, url] of urls.entries()) {
    if (!isOciUrl(url)) continue;
    try {
      return (await resolveLayer(url, { ...options, retries: 0 }, index === urls.length - 1)).title;
    } catch (err) {
      if (!(err instanceof TransferError)) throw err;
    }
  }
  return undefined;
}
