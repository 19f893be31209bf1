/**
 * What a registry pushed to holds already: whether it answers at all (asked once, before any
 * image is downloaded for it), and which manifest a tag points at when its layer is a given
 * archive (a mirror run again sends nothing for it).
 */
import { TransferError } from "../http.js";
import { OciClient, type OciClientOptions } from "./client.js";
import { fetchManifest, findArchiveLayer } from "./manifest.js";
import type { OciReference } from "./reference.js";

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
  if (response.status >= 500) throw await client.failure(response, `registry ${ref.host}`);
  response.body.destroy();
}

/**
 * The digest of the manifest `ref`'s tag points at (for `entry.arch`) when one of its layers is
 * the archive whose sha256 is `entry.sha256`; undefined when the tag (or the repository) does not
 * exist, or holds something else.
 *
 * @throws TransferError naming the reference for other failures (refused login, server error).
 */
export async function taggedArchive(
  ref: OciReference,
  entry: { sha256: string; arch: string },
  options: OciClientOptions,
): Promise<string | undefined> {
  const client = new OciClient(ref, "pull,push", options);
  let fetched;
  try {
    fetched = await fetchManifest(client, entry.arch);
  } catch (err) {
    if (err instanceof TransferError && err.status === 404) return undefined;
    if (
      err instanceof TransferError &&
      err.status === undefined &&
      !err.retryable &&
      !err.unreachable
    ) {
      return undefined; // a manifest of another kind, or an index without it: replaced by the push
    }
    throw err;
  }
  const layer = findArchiveLayer(fetched.manifest, entry.sha256);
  return layer?.digest === `sha256:${entry.sha256}` ? fetched.digest : undefined;
}
