/**
 * Image manifests: fetching one (an OCI image manifest, or a Docker v2 manifest), checking it
 * against a pinned digest, and picking the layer that holds the guest-image archive.
 */
import { createHash } from "node:crypto";
import { ARCHIVE_EXTENSIONS, archiveExtension } from "../../archive/extensions.js";
import { TransferError } from "../http.js";
import { readText, registryFailure, type OciClient } from "./client.js";
import { formatOciReference, manifestReference } from "./reference.js";

/** Media type of an OCI image manifest. */
export const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
/** Media type of a Docker image manifest, schema 2. */
export const DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json";
const INDEXES = [
  "application/vnd.oci.image.index.v1+json",
  "application/vnd.docker.distribution.manifest.list.v2+json",
];
/** The annotation naming a layer's file, as `oras push` and our `publish` write it. */
export const TITLE_ANNOTATION = "org.opencontainers.image.title";

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

function isDescriptor(value: unknown): value is Descriptor {
  const d = value as Partial<Descriptor> | null;
  return (
    typeof d === "object" &&
    d !== null &&
    typeof d.mediaType === "string" &&
    typeof d.digest === "string" &&
    typeof d.size === "number"
  );
}

/** A platform as an index describes it: `linux/arm64`, or `?`. */
function platformOf(entry: unknown): string {
  const p = (entry as { platform?: { os?: unknown; architecture?: unknown } } | null)?.platform;
  return typeof p?.os === "string" && typeof p.architecture === "string"
    ? `${p.os}/${p.architecture}`
    : "?";
}

/**
 * `json` as an image manifest, or, for an image index of exactly one manifest, that manifest's
 * descriptor (to follow); throws a TransferError naming `where` for anything else.
 */
function asImageManifest(
  json: unknown,
  contentType: string,
  where: string,
): ImageManifest | Descriptor {
  const doc = (typeof json === "object" && json !== null ? json : {}) as Record<string, unknown>;
  const mediaType = typeof doc.mediaType === "string" ? doc.mediaType : contentType;
  const fail = (why: string) => new TransferError(where, why, { retryable: false });
  if (INDEXES.includes(mediaType) || Array.isArray(doc.manifests)) {
    const entries: unknown[] = Array.isArray(doc.manifests) ? doc.manifests : [];
    if (entries.length === 1 && isDescriptor(entries[0])) return entries[0];
    const platforms = entries.map(platformOf).join(", ");
    throw fail(
      entries.length === 0
        ? "is an empty image index"
        : `is an image index of ${entries.length} platforms (${platforms}): point to one manifest by its digest`,
    );
  }
  if (mediaType !== OCI_MANIFEST && mediaType !== DOCKER_MANIFEST) {
    throw fail(`is not an image manifest (media type "${mediaType}")`);
  }
  const { config, layers } = doc;
  if (!isDescriptor(config) || !Array.isArray(layers) || !layers.every(isDescriptor)) {
    throw fail("is a malformed image manifest");
  }
  return { mediaType, config, layers };
}

/**
 * Fetches the manifest `client.ref` names (its digest if pinned, else its tag), asking for OCI
 * and Docker v2 manifests. A pinned digest must match the bytes received. An image index of one
 * manifest (what multi-platform tools push for a single platform) is followed to that manifest.
 */
export async function fetchManifest(client: OciClient): Promise<FetchedManifest> {
  const where = formatOciReference(client.ref);
  const first = await fetchDocument(client, manifestReference(client.ref), client.ref.digest);
  const found = asImageManifest(first.json, first.contentType, where);
  if (!("digest" in found)) return { manifest: found, digest: first.digest };
  const only = await fetchDocument(client, found.digest, found.digest);
  const manifest = asImageManifest(only.json, only.contentType, `${where} (${found.digest})`);
  if ("digest" in manifest)
    throw new TransferError(where, "is an index of an index", { retryable: false });
  return { manifest, digest: only.digest };
}

/** The manifest or index `reference` (a tag or digest) names; `pinned`: the digest it must have. */
async function fetchDocument(
  client: OciClient,
  reference: string,
  pinned: string | undefined,
): Promise<{ json: unknown; contentType: string; digest: string }> {
  const where = formatOciReference(client.ref);
  const url = client.url(`manifests/${reference}`);
  const accept = [OCI_MANIFEST, DOCKER_MANIFEST, ...INDEXES].join(", ");
  const response = await client.request(url, { headers: { accept } });
  // The caller's error names the image (`cannot download oci://...`): "manifest" says what failed.
  if (response.status !== 200) throw await registryFailure(response, "manifest");
  const text = await readText(response);
  const digest = `sha256:${createHash("sha256").update(text).digest("hex")}`;
  if (pinned !== undefined && pinned !== digest) {
    throw new TransferError(where, `the registry sent a manifest whose digest is ${digest}`, {
      retryable: false,
    });
  }
  try {
    return {
      json: JSON.parse(text),
      contentType: response.headers["content-type"]?.split(";")[0]?.trim() ?? "",
      digest,
    };
  } catch {
    throw new TransferError(where, "the manifest is not JSON", { retryable: false });
  }
}

/** A layer's file name from its title annotation, if any. */
export function layerTitle(layer: Descriptor): string | undefined {
  return layer.annotations?.[TITLE_ANNOTATION];
}

/**
 * The layer holding the archive: the only layer, or the only one whose title ends in an archive
 * extension (`.tar.gz`, `.tar.xz`, ...). Throws a {@link TransferError} naming `where` otherwise.
 */
export function pickArchiveLayer(manifest: ImageManifest, where: string): Descriptor {
  if (manifest.layers.length === 1 && manifest.layers[0] !== undefined) return manifest.layers[0];
  const archives = manifest.layers.filter((layer) => {
    const title = layerTitle(layer);
    return title !== undefined && archiveExtension(title) !== undefined;
  });
  if (archives.length === 1 && archives[0] !== undefined) return archives[0];
  const found = `${manifest.layers.length} layers, ${archives.length} titled as an archive`;
  throw new TransferError(where, `cannot tell which layer is the image archive (${found})`, {
    retryable: false,
    hint: `give the archive layer an ${TITLE_ANNOTATION} annotation ending in ${ARCHIVE_EXTENSIONS.join(", ")}`,
  });
}
