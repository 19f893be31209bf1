/**
 * What a registry pushed to holds already: whether it answers at all (asked once, before any
 * image is downloaded for it), and which manifest a tag points at when its layer is a given
 * archive (a mirror run again sends nothing for it).
 */
import { TransferError } from "../http.js";
import { OciClient, registryFailure, type OciClientOptions } from "./client.js";
import { fetchManifest, pickArchiveLayer } from "./manifest.js";
import { formatOciReference, type OciReference } from "./reference.js";

/**
 * Asks the registry of `ref` for its API root (`/v2/`), without retrying a registry that cannot
 * be reached (a server error is retried). Any answer but a server error is a registry at work (401 included: pushes log in).
 *
 * @throws TransferError naming the registry when it cannot be reached or fails.
 */
export async function checkRegistryAnswers(
  ref: OciReference,
  options: OciClientOptions,
): Promise<void> {
  const client = new OciClient(ref, "pull,push", { ...options, failFastWhenUnreachable: true });
  const response = await client.request(`${client.base}/v2/`);
  if (response.status >= 500) throw await registryFailure(response, `registry ${ref.host}`);
  response.body.destroy();
}

/**
 * The digest of the manifest `ref`'s tag points at when its archive layer is the blob `sha256`;
 * undefined when the tag (or the repository) does not exist, or holds something else.
 *
 * @throws TransferError naming the reference for other failures (refused login, server error).
 */
export async function taggedArchive(
  ref: OciReference,
  sha256: string,
  options: OciClientOptions,
): Promise<string | undefined> {
  const client = new OciClient(ref, "pull,push", options);
  let fetched;
  try {
    fetched = await fetchManifest(client);
  } catch (err) {
    if (err instanceof TransferError && err.status === 404) return undefined;
    if (
      err instanceof TransferError &&
      err.status === undefined &&
      !err.retryable &&
      !err.unreachable
    ) {
      return undefined; // an index, or a manifest of another kind: replaced by the push
    }
    throw err;
  }
  try {
    const layer = pickArchiveLayer(fetched.manifest, formatOciReference(ref));
    return layer.digest === `sha256:${sha256}` ? fetched.digest : undefined;
  } catch {
    return undefined;
  }
}
