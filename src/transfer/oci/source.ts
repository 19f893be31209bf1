/**
 * OCI registries as a source: an `oci://HOST/REPOSITORY:TAG` (or `@sha256:DIGEST`) URL resolves
 * to its manifest (through an image index, the child for the entry's arch), the manifest to the
 * archive layer (the one whose digest is the file's sha256), and the layer's blob is fetched as an
 * http(s) source (resumed, retried, its token renewed when it expires). Mirrors rewrite `oci://`
 * URLs like any other, so a pull-through cache is tried first. When the file's sha256 is known,
 * a manifest without a layer of that digest is refused before a byte of any blob comes.
 */
import type { Readable } from "node:stream";
import {
  ARCHIVE_EXTENSIONS,
  archiveExtension,
  type ArchiveNaming,
  type Compression,
} from "../../archive/extensions.js";
import { detectFormat, MAGIC_LENGTH } from "../../archive/detect.js";
import { ChecksumError } from "../../errors.js";
import { TransferError } from "../http.js";
import { httpSource } from "../http-source.js";
import type { Source, SourceOptions } from "../sources.js";
import { OciClient } from "./client.js";
import {
  fetchManifest,
  findArchiveLayer,
  layerCompression,
  layerTitle,
  TITLE_ANNOTATION,
  type Descriptor,
} from "./manifest.js";
import { isOciUrl, parseOciReference } from "./reference.js";

/** The archive layer an `oci://` URL names. */
interface ResolvedLayer {
  layer: Descriptor;
  /** The client of its repository, authorized. */
  client: OciClient;
}

/**
 * Resolves `url` (an `oci://` reference) to its archive layer (see `findArchiveLayer`). A manifest
 * without a layer whose digest is the file's sha256 is a {@link ChecksumError} naming the file
 * when `url` is the original, and a {@link TransferError} (try the next source) when it is a
 * mirror's.
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
  const { manifest } = await fetchManifest(client, options.arch);
  const { sha256, what } = options.integrity ?? {};
  const layer = findArchiveLayer(manifest, sha256);
  const expected = `sha256:${sha256}`;
  if (sha256 === undefined && layer === undefined) {
    const found = `${manifest.layers.length} layers`;
    throw new TransferError(url, `cannot tell which layer is the image archive (${found})`, {
      retryable: false,
      hint: `give the archive layer an ${TITLE_ANNOTATION} annotation ending in ${ARCHIVE_EXTENSIONS.join(", ")}`,
    });
  }
  if (sha256 !== undefined && layer?.digest !== expected) {
    // `layer` is then the one that looks like the archive, if one does: name it.
    const count = manifest.layers.length;
    if (!isOriginal) {
      const holds =
        layer === undefined ? `has no layer ${expected}` : `holds layer ${layer.digest}`;
      throw new TransferError(url, `${holds}, not the entry's ${expected}`, { retryable: false });
    }
    const holds =
      layer === undefined
        ? `none of the ${count} layers of ${url} has that digest`
        : `${url} holds ${count === 1 ? "layer" : "the archive layer"} ${layer.digest}`;
    throw new ChecksumError(`checksum mismatch for ${what}: expected ${sha256}, but ${holds}`, {
      hint: "the registry entry or the image in the OCI registry is wrong; nothing was kept",
    });
  }
  return { layer: layer!, client };
}

/** The blob of `layer`, with the authorization to fetch it and a way to renew it. */
function blobSource({ layer, client }: ResolvedLayer): Source {
  return httpSource(client.url(`blobs/${layer.digest}`), {
    headers: client.authHeaders(),
    reauthorize: (challenge) => client.authorize(challenge),
  });
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
      blob ??= blobSource(await resolveLayer(url, { ...options, signal }, isOriginal));
      return blob.open(request);
    },
  };
}

/** Up to `length` first bytes of `body`, which is destroyed then. */
async function firstBytes(body: Readable, length: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    chunks.push(chunk as Buffer);
    size += (chunk as Buffer).length;
    if (size >= length) break;
  }
  body.destroy();
  return Buffer.concat(chunks).subarray(0, length);
}

/**
 * The compression the first bytes of the layer's blob show, asked with one `Range` request (a
 * registry that ignores the range is cut after them); undefined when they cannot be had.
 */
async function sniffCompression(
  { layer, client }: ResolvedLayer,
  signal: AbortSignal | undefined,
): Promise<Compression | undefined> {
  try {
    const response = await client.request(client.url(`blobs/${layer.digest}`), {
      headers: { range: `bytes=0-${MAGIC_LENGTH - 1}` },
      retry: false,
    });
    if (response.status !== 200 && response.status !== 206) {
      response.body.destroy();
      return undefined;
    }
    const format = detectFormat(await firstBytes(response.body, MAGIC_LENGTH));
    return format === "tar" ? "none" : format;
  } catch (err) {
    if (signal?.aborted) throw err;
    return undefined;
  }
}

/**
 * What names the archive of a layer: its title when that ends like an archive; else the
 * compression its media type names (`+zstd`, `+gzip`, Docker's `.tar.gzip`), or, for a type that
 * names none (`application/octet-stream`, a publisher's own), the one its first bytes show.
 */
async function layerNaming(
  resolved: ResolvedLayer,
  signal: AbortSignal | undefined,
): Promise<ArchiveNaming> {
  const title = layerTitle(resolved.layer);
  if (title !== undefined && archiveExtension(title) !== undefined) return { title };
  const compression =
    layerCompression(resolved.layer.mediaType) ?? (await sniffCompression(resolved, signal));
  return { title, compression };
}

/**
 * What names the archive of the first `oci://` URL of `urls` (mirrors first, the original last)
 * whose manifest answers at once (no retries), see {@link layerNaming}; undefined when none does
 * (the download itself then reports the failure).
 */
export async function archiveNaming(
  urls: readonly string[],
  options: SourceOptions,
): Promise<ArchiveNaming | undefined> {
  for (const [index, url] of urls.entries()) {
    if (!isOciUrl(url)) continue;
    let resolved: ResolvedLayer;
    try {
      resolved = await resolveLayer(url, { ...options, retries: 0 }, index === urls.length - 1);
    } catch (err) {
      if (!(err instanceof TransferError)) throw err;
      continue;
    }
    return layerNaming(resolved, options.signal);
  }
  return undefined;
}
