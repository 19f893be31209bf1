/**
 * Pushing a guest-image archive to an OCI registry: the archive as a blob (in one PUT, or in
 * chunks when it is larger than one: ghcr.io takes at most 4 MiB per request), an empty config
 * blob, and an OCI image manifest whose single layer carries the archive's file name as its
 * `org.opencontainers.image.title`. Blobs the repository already has are not sent again.
 */
import { createHash } from "node:crypto";
import { open, type FileHandle } from "node:fs/promises";
import { basename } from "node:path";
import { AxError, fsError } from "../../errors.js";
import { TransferError, type HttpResponse } from "../http.js";
import { OciClient, type OciClientOptions } from "./client.js";
import { layerMediaType, OCI_MANIFEST, TITLE_ANNOTATION, type Descriptor } from "./manifest.js";
import { formatOciReference, type OciReference } from "./reference.js";

/** `artifactType` of the manifests `publish` writes. */
export const GUEST_IMAGE_ARTIFACT = "application/vnd.axvisor.guest-image.v1";
/** The empty JSON config blob (`{}`) of artifacts without a config. */
const EMPTY_CONFIG = {
  mediaType: "application/vnd.oci.empty.v1+json",
  bytes: Buffer.from("{}"),
};
/** Default {@link PushOptions.chunkSize}: 4 MiB, the most ghcr.io takes in one PATCH. */
export const DEFAULT_CHUNK_SIZE = 4 * 1024 * 1024;
/** The largest request body a push holds in memory, whatever a registry's minimum chunk. */
const MAX_CHUNK_SIZE = 256 * 1024 * 1024;

/** Options of {@link pushArchive}. */
export interface PushOptions extends OciClientOptions {
  /** Archives larger than this go up in chunks of this size (default 4 MiB). */
  chunkSize?: number;
  /** Told the archive's bytes sent so far, after each request that sent some. */
  onProgress?: (sent: number, total: number) => void;
  /** Where the archive's upload session is kept between runs, to resume a cut upload. */
  session?: UploadSession;
}

/**
 * Where an upload's location is remembered after each chunk the registry acknowledged, so that a
 * push cut short (killed, interrupted, a dropped connection) resumes there the next time.
 */
export interface UploadSession {
  /** The location saved for the blob `digest`, if any. */
  load(digest: string): Promise<string | undefined>;
  /** Remembers that the upload of `digest` goes on at `location`. */
  save(digest: string, location: string): Promise<void>;
  /** Forgets the upload of `digest` (done, or not resumable). */
  clear(digest: string): Promise<void>;
}

/** What {@link pushArchive} did. */
export interface PushResult {
  /** `sha256:<hex>` of the manifest now tagged. */
  manifestDigest: string;
  /** The archive's layer descriptor. */
  layer: Descriptor;
  /** False when the registry had the archive's blob already. */
  uploaded: boolean;
}

/**
 * Where the next part of an upload goes: the `Location` of `response`, made absolute.
 *
 * @throws TransferError naming the registry's answer when that is not an http(s) URL.
 */
function uploadLocation(response: HttpResponse): string {
  const location = response.headers["location"];
  if (location === undefined) return response.url;
  const url = URL.canParse(location, response.url) ? new URL(location, response.url) : undefined;
  if (url?.protocol !== "http:" && url?.protocol !== "https:") {
    throw new TransferError(
      response.url,
      `answered with an invalid upload location ${JSON.stringify(location)}`,
      { retryable: false },
    );
  }
  return url.href;
}

function withDigest(location: string, digest: string): string {
  const url = new URL(location);
  url.searchParams.set("digest", digest);
  return url.href;
}

/** Reads `length` bytes at `position` of `file` (`path` names it in errors). */
async function readChunk(file: FileHandle, path: string, position: number, length: number) {
  const chunk = Buffer.alloc(length);
  try {
    for (let done = 0; done < length;) {
      const { bytesRead } = await file.read(chunk, done, length - done, position + done);
      if (bytesRead === 0) throw new Error("file shrank while being uploaded");
      done += bytesRead;
    }
  } catch (err) {
    throw fsError(err, "read", path);
  }
  return chunk;
}

/** `response` when its status is `status` (its body discarded); else the registry's failure. */
async function expectStatus(
  client: OciClient,
  response: HttpResponse,
  status: number,
  what: string,
): Promise<HttpResponse> {
  if (response.status !== status) throw await client.failure(response, what);
  response.body.destroy();
  return response;
}

/** True when the repository has the blob `digest` already. */
async function hasBlob(client: OciClient, digest: string): Promise<boolean> {
  const response = await client.request(client.url(`blobs/${digest}`), { method: "HEAD" });
  if (response.status === 404) {
    response.body.destroy();
    return false;
  }
  await expectStatus(client, response, 200, `blob ${digest}`);
  return true;
}

/** Where an upload goes on: its location, the bytes the registry has, its smallest chunk. */
interface UploadPlace {
  location: string;
  position: number;
  minChunk: number;
}

/** A new upload session of the repository. */
async function startUpload(client: OciClient, what: string): Promise<UploadPlace> {
  const started = await expectStatus(
    client,
    await client.request(client.url("blobs/uploads/"), { method: "POST" }),
    202,
    what,
  );
  const minChunk = Number(started.headers["oci-chunk-min-length"]) || 0;
  return { location: uploadLocation(started), position: 0, minChunk };
}

/**
 * The upload session saved at `location`, asked where it stands (`GET`: 204 with `Range: 0-N`);
 * undefined when the registry no longer has it, or it is not on the registry's origin.
 */
async function resumeUpload(client: OciClient, location: string): Promise<UploadPlace | undefined> {
  if (!URL.canParse(location) || new URL(location).origin !== new URL(client.base).origin) {
    return undefined;
  }
  const response = await client.request(location);
  response.body.destroy();
  const range = /^0-(\d+)$/.exec(response.headers["range"] ?? "");
  if (response.status !== 204 || range === null) return undefined;
  // "0-0" is what distribution answers for an upload that has no byte yet.
  const position = range[1] === "0" ? 0 : Number(range[1]) + 1;
  const minChunk = Number(response.headers["oci-chunk-min-length"]) || 0;
  return { location: uploadLocation(response), position, minChunk };
}

/** A blob to upload, and how. */
interface BlobUpload {
  /** `sha256:<hex>`. */
  digest: string;
  size: number;
  /** The blob's `length` bytes at `position`. */
  read: (position: number, length: number) => Promise<Buffer>;
  chunkSize: number;
  /** Told the bytes sent after each request. */
  onSent?: (sent: number) => void;
  session?: UploadSession;
}

/**
 * Uploads a blob: every chunk but the last as a PATCH (each to the location the previous answer
 * gave), the last one with the closing PUT; a blob that fits in one chunk is a single PUT. Chunks
 * are at least the registry's `OCI-Chunk-Min-Length`. With a `session`, the location is saved
 * after each acknowledged chunk and a saved upload is resumed where the registry says it stands;
 * one the registry no longer has, or refuses to go on with, is started over once, with a notice
 * (Distribution, which docker-registry, Harbor and GitLab's registry build on, refuses an upload
 * whose last chunk was cut midway, or whose acknowledgement never reached us).
 */
async function uploadBlob(client: OciClient, blob: BlobUpload): Promise<void> {
  const { digest, session } = blob;
  const saved = await session?.load(digest);
  if (saved !== undefined) {
    const resumed = await resumeUpload(client, saved);
    if (resumed !== undefined && resumed.position <= blob.size) {
      try {
        await sendBlob(client, blob, resumed);
        return;
      } catch (err) {
        // Cut again (no answer, or interrupted): kept for the next run. Refused: start over.
        if (!(err instanceof TransferError) || err.status === undefined) throw err;
      }
    }
    await session?.clear(digest);
    client.logger?.info(
      `the registry cannot go on with the cut upload of ${digest}: sending it from the start`,
    );
  }
  const place = await startUpload(
    client,
    `upload of ${digest} to ${formatOciReference(client.ref)}`,
  );
  await sendBlob(client, blob, place);
}

/** Sends the bytes of the blob from `place.position` on, then closes the upload. */
async function sendBlob(client: OciClient, blob: BlobUpload, place: UploadPlace): Promise<void> {
  const { digest, size, read, onSent, session } = blob;
  const what = `upload of ${digest} to ${formatOciReference(client.ref)}`;
  const chunk = Math.max(blob.chunkSize, place.minChunk);
  // Each request's body is read into memory: a registry's minimum may not make it the archive.
  if (chunk > MAX_CHUNK_SIZE && size - place.position > MAX_CHUNK_SIZE) {
    throw new TransferError(
      what,
      `the registry asks for chunks of at least ${place.minChunk} bytes (OCI-Chunk-Min-Length), more than the ${MAX_CHUNK_SIZE / 1024 / 1024} MiB sent at once`,
      { retryable: false },
    );
  }
  const octets = { "content-type": "application/octet-stream" };
  let { location, position } = place;
  for (; size - position > chunk; position += chunk) {
    const range = `${position}-${position + chunk - 1}`;
    const sent = await client.request(location, {
      method: "PATCH",
      headers: { ...octets, "content-range": range },
      body: await read(position, chunk),
      retry: false,
    });
    location = uploadLocation(await expectStatus(client, sent, 202, `${what} (bytes ${range})`));
    await session?.save(digest, location);
    onSent?.(position + chunk);
  }
  const closed = await client.request(withDigest(location, digest), {
    method: "PUT",
    headers: octets,
    body: await read(position, size - position),
    retry: false,
  });
  await expectStatus(client, closed, 201, what);
  await session?.clear(digest);
  onSent?.(size);
}

/**
 * Pushes the archive at `path` (whose sha256 is `sha256`, size `size`) to `ref`'s repository and
 * tags the manifest `ref.tag`. Registry failures are errors naming the reference and the step.
 */
export async function pushArchive(
  ref: OciReference,
  path: string,
  file: { sha256: string; size: number },
  options: PushOptions = {},
): Promise<PushResult> {
  const client = new OciClient(ref, "pull,push", options);
  const title = basename(path);
  const layer: Descriptor = {
    mediaType: layerMediaType(title),
    digest: `sha256:${file.sha256}`,
    size: file.size,
    annotations: { [TITLE_ANNOTATION]: title },
  };
  const chunkSize = options.chunkSize ?? DEFAULT_CHUNK_SIZE;
  let uploaded = false;
  if (await hasBlob(client, layer.digest)) {
    await options.session?.clear(layer.digest); // a push killed after its last byte
  } else {
    let handle: FileHandle;
    try {
      handle = await open(path, "r");
    } catch (err) {
      throw fsError(err, "open", path);
    }
    try {
      const read = (position: number, length: number) => readChunk(handle, path, position, length);
      const onSent = (sent: number) => options.onProgress?.(sent, file.size);
      onSent(0);
      const { session } = options;
      await uploadBlob(client, {
        digest: layer.digest,
        size: file.size,
        read,
        chunkSize,
        onSent,
        session,
      });
      uploaded = true;
    } finally {
      await handle.close();
    }
  }
  const config: Descriptor = {
    mediaType: EMPTY_CONFIG.mediaType,
    digest: `sha256:${createHash("sha256").update(EMPTY_CONFIG.bytes).digest("hex")}`,
    size: EMPTY_CONFIG.bytes.length,
  };
  if (!(await hasBlob(client, config.digest))) {
    const read = async () => EMPTY_CONFIG.bytes;
    await uploadBlob(client, { digest: config.digest, size: config.size, read, chunkSize });
  }
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      artifactType: GUEST_IMAGE_ARTIFACT,
      config,
      layers: [layer],
    }),
  );
  const tag = ref.tag ?? "latest";
  const response = await client.request(client.url(`manifests/${tag}`), {
    method: "PUT",
    headers: { "content-type": OCI_MANIFEST },
    body: manifest,
  });
  await expectStatus(client, response, 201, `manifest of ${formatOciReference(ref)}`);
  const manifestDigest = `sha256:${createHash("sha256").update(manifest).digest("hex")}`;
  // The entry will pin this digest: a registry that stored other bytes would make it unpullable.
  const stored = response.headers["docker-content-digest"];
  if (stored !== undefined && stored !== manifestDigest) {
    throw new AxError(
      `${formatOciReference(ref)}: the registry stored the manifest as ${stored}, not as the ${manifestDigest} sent`,
    );
  }
  return { manifestDigest, layer, uploaded };
}
