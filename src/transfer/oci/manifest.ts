/**
 * Image manifests: fetching the one an `oci://` reference names (an OCI image manifest or a
 * Docker v2 manifest, or, through an image index, the child for the entry's arch), checking each
 * against the digest it was asked by, and finding the layer that holds the guest-image archive;
 * the layer media types of archives.
 */
import { createHash } from "node:crypto";
import { archiveExtension, compressionOf, type Compression } from "../../archive/extensions.js";
import { TransferError } from "../http.js";
import { readText, type OciClient } from "./client.js";
import { formatPlatform, pickPlatformManifest, type IndexEntry } from "./platform.js";
import { formatOciReference, manifestReference } from "./reference.js";

/** Media type of an OCI image manifest. */
export const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
/** Media type of a Docker image manifest, schema 2. */
export const DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json";
const MANIFESTS = [OCI_MANIFEST, DOCKER_MANIFEST];
const INDEXES = [
  "application/vnd.oci.image.index.v1+json",
  "application/vnd.docker.distribution.manifest.list.v2+json",
];
/** The annotation naming a layer's file, as `oras push` and our `publish` write it. */
export const TITLE_ANNOTATION = "org.opencontainers.image.title";
/** The OCI layer media type of an uncompressed tar; compressed ones add `+gzip`, `+zstd`... */
const TAR_LAYER = "application/vnd.oci.image.layer.v1.tar";
/**
 * A tar layer media type and its compression: OCI's `...tar`, `...tar+gzip`, `...tar+zstd` (and
 * `+xz`, as `publish` writes it), Docker's `...tar.gzip`, `application/x-tar`.
 */
const TAR_LAYER_TYPE = /(?:^|[./+-])tar(?:[.+](gzip|zstd|xz))?$/;

/** A content descriptor: a blob by digest. */
export interface Descriptor {
  mediaType: string;
  /** `sha256:<hex>`. */
  digest: string;
  size: number;
  annotations?: Record<string, string>;
}

/** The parts of an image manifest this tool reads. */
export interface ImageManifest {
  mediaType: string;
  config: Descriptor;
  layers: Descriptor[];
}

/** A fetched manifest and its digest. */
export interface FetchedManifest {
  manifest: ImageManifest;
  /** `sha256:<hex>` of the manifest's bytes. */
  digest: string;
}

/** What a manifest request may answer: an image manifest, or an image index of several. */
type Document =
  { kind: "manifest"; manifest: ImageManifest } | { kind: "index"; manifests: IndexEntry[] };

/** A digest as the OCI image specification writes one (`algorithm:encoded`). */
const DIGEST = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]{1,512}$/;

function isDescriptor(value: unknown): value is Descriptor {
  const d = value as Partial<Descriptor> | null;
  return (
    typeof d === "object" &&
    d !== null &&
    typeof d.mediaType === "string" &&
    typeof d.digest === "string" &&
    DIGEST.test(d.digest) &&
    typeof d.size === "number"
  );
}

function isIndexEntry(value: unknown): value is IndexEntry {
  if (!isDescriptor(value)) return false;
  const { platform } = value as IndexEntry;
  return (
    platform === undefined ||
    (typeof platform === "object" &&
      platform !== null &&
      typeof platform.architecture === "string" &&
      ["string", "undefined"].includes(typeof platform.os) &&
      ["string", "undefined"].includes(typeof platform.variant))
  );
}

/** `json` as an image manifest or index; throws what `fail` makes for anything else. */
function asDocument(json: unknown, contentType: string, fail: (why: string) => Error): Document {
  const doc = (typeof json === "object" && json !== null ? json : {}) as Record<string, unknown>;
  const mediaType = typeof doc.mediaType === "string" ? doc.mediaType : contentType;
  if (INDEXES.includes(mediaType) || Array.isArray(doc.manifests)) {
    const { manifests } = doc;
    if (!Array.isArray(manifests) || !manifests.every(isIndexEntry)) {
      throw fail("is a malformed image index");
    }
    return { kind: "index", manifests };
  }
  if (!MANIFESTS.includes(mediaType)) {
    throw fail(`is not an image manifest (media type "${mediaType}")`);
  }
  const { config, layers } = doc;
  if (!isDescriptor(config) || !Array.isArray(layers) || !layers.every(isDescriptor)) {
    throw fail("is a malformed image manifest");
  }
  return { kind: "manifest", manifest: { mediaType, config, layers } };
}

/**
 * Fetches the manifest or index `reference` (a tag or a digest) names in `client`'s repository;
 * with `pinned`, its bytes must have that digest. Errors are TransferErrors naming `where`.
 */
async function fetchDocument(
  client: OciClient,
  reference: string,
  pinned: string | undefined,
  where: string,
): Promise<{ document: Document; digest: string }> {
  const fail = (why: string) => new TransferError(where, why, { retryable: false });
  const accept = [...MANIFESTS, ...INDEXES].join(", ");
  const response = await client.request(client.url(`manifests/${reference}`), {
    headers: { accept },
  });
  if (response.status !== 200) {
    const what = reference.startsWith("sha256:") ? "manifest" : "tag";
    throw await client.failure(response, `${what} ${reference}`);
  }
  const text = await readText(response);
  const digest = `sha256:${createHash("sha256").update(text).digest("hex")}`;
  if (pinned !== undefined && pinned !== digest) {
    throw fail(`the registry sent a manifest whose digest is ${digest}, not ${pinned}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw fail("the manifest is not JSON");
  }
  const contentType = response.headers["content-type"]?.split(";")[0]?.trim() ?? "";
  return { document: asDocument(json, contentType, fail), digest };
}

/**
 * Fetches the image manifest `client.ref` names (by its digest if pinned, else its tag), asking
 * for OCI and Docker v2 manifests and indexes. An image index leads to its child manifest for
 * `arch` (the registry entry's; see `pickPlatformManifest`), fetched by its digest. A pinned
 * digest must match the bytes received, and so must each child's.
 */
export async function fetchManifest(client: OciClient, arch?: string): Promise<FetchedManifest> {
  const where = formatOciReference(client.ref);
  const top = await fetchDocument(client, manifestReference(client.ref), client.ref.digest, where);
  if (top.document.kind === "manifest") {
    return { manifest: top.document.manifest, digest: top.digest };
  }
  const child = pickPlatformManifest(top.document.manifests, arch, where);
  const fail = (why: string) =>
    new TransferError(where, `the image index's manifest for ${formatPlatform(child)} ${why}`, {
      retryable: false,
    });
  if (!MANIFESTS.includes(child.mediaType)) {
    throw fail(`is not an image manifest (media type "${child.mediaType}")`);
  }
  const fetched = await fetchDocument(client, child.digest, child.digest, where);
  if (fetched.document.kind !== "manifest") throw fail("is an image index itself");
  return { manifest: fetched.document.manifest, digest: fetched.digest };
}

/** A layer's file name from its title annotation, if any. */
export function layerTitle(layer: Descriptor): string | undefined {
  return layer.annotations?.[TITLE_ANNOTATION];
}

/** The OCI layer media type `publish` gives an archive, from its file name. */
export function layerMediaType(fileName: string): string {
  const compression = compressionOf(fileName);
  return compression === "none" ? TAR_LAYER : `${TAR_LAYER}+${compression}`;
}

/**
 * The compression a layer media type names when it is a tar layer's ({@link TAR_LAYER_TYPE}):
 * `none` for a plain tar; undefined for any other type (`application/octet-stream`, a README's
 * `text/markdown`, a type of the publisher's own).
 */
export function layerCompression(mediaType: string): Compression | undefined {
  const tar = TAR_LAYER_TYPE.exec(mediaType.toLowerCase());
  return tar === null ? undefined : ((tar[1] as Compression | undefined) ?? "none");
}

/** True when the layer's title ends like an archive (`.tar.gz`, `.tar.xz`, ...). */
function titledAsArchive(layer: Descriptor): boolean {
  const title = layerTitle(layer);
  return title !== undefined && archiveExtension(title) !== undefined;
}

/**
 * The layer holding the archive: the one whose digest is `sha256` (the registry entry's) when one
 * is; else the only layer, else the only one whose title ends like an archive, else (no layer
 * titled so) the only one of a tar media type. Undefined when that does not tell.
 */
export function findArchiveLayer(manifest: ImageManifest, sha256?: string): Descriptor | undefined {
  const { layers } = manifest;
  const byDigest = layers.find((layer) => layer.digest === `sha256:${sha256}`);
  if (byDigest !== undefined) return byDigest;
  if (layers.length === 1) return layers[0];
  const titled = layers.filter(titledAsArchive);
  if (titled.length > 0) return titled.length === 1 ? titled[0] : undefined;
  const typed = layers.filter((layer) => layerCompression(layer.mediaType) !== undefined);
  return typed.length === 1 ? typed[0] : undefined;
}
