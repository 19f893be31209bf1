/**
 * `oci://HOST[:PORT]/REPOSITORY[:TAG][@sha256:DIGEST]` references, and the base URL of the
 * registry they name (https, or plain http for loopback hosts and `insecure_registries`). Docker
 * Hub is named as docker names it: `docker.io` (or `index.docker.io`), official images under
 * `library/`, its API at `registry-1.docker.io`.
 */
import { AxError } from "../../errors.js";
import { hostName, isLoopbackHost } from "../hosts.js";
import { sourceKind } from "../sources.js";

/** A parsed `oci://` reference. */
export interface OciReference {
  /** `host[:port]` as written (lower case). */
  host: string;
  /** Repository path, e.g. `arceos-hypervisor/axvisor-guest/qemu_aarch64_linux`. */
  repository: string;
  /** The tag; `latest` when neither a tag nor a digest is given. */
  tag: string | undefined;
  /** `sha256:<64 hex>` when the reference is pinned; it wins over the tag. */
  digest: string | undefined;
}

const HOST =
  /^(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*|\[[0-9a-f:.]+\])(?::\d{1,5})?$/;
const REPOSITORY =
  /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/;
const TAG = /^\w[\w.-]{0,127}$/;
const DIGEST = /^sha256:[a-f0-9]{64}$/;

/** Docker Hub, by the names docker accepts for it; references name it `docker.io`. */
export const DOCKER_HUB = "docker.io";
/** The names docker accepts for Docker Hub (in references, and as keys of its logins). */
export const DOCKER_HUB_NAMES: readonly string[] = [
  DOCKER_HUB,
  "index.docker.io",
  "registry-1.docker.io",
];
/** Where Docker Hub's registry API answers. */
const DOCKER_HUB_API = "registry-1.docker.io";

/** True when `url` uses the `oci://` scheme. */
export function isOciUrl(url: string): boolean {
  return sourceKind(url) === "oci";
}

/**
 * Parses an `oci://` URL. Throws an {@link AxError} naming the URL and the part at fault when it
 * is not one (a missing host or repository, an upper-case repository, a malformed tag or digest).
 */
export function parseOciReference(url: string): OciReference {
  const bad = (why: string) => new AxError(`invalid OCI reference ${url}: ${why}`);
  if (!isOciUrl(url)) throw bad("expected oci://HOST/REPOSITORY:TAG or ...@sha256:DIGEST");
  const rest = url.slice("oci://".length);
  const slash = rest.indexOf("/");
  if (slash <= 0) throw bad("no repository after the host");
  const written = rest.slice(0, slash).toLowerCase();
  // The pattern lets through what no URL can hold (port 99999, a malformed IPv6 address).
  if (!HOST.test(written) || !URL.canParse(`https://${written}/`)) {
    throw bad(`"${written}" is not a host[:port]`);
  }
  const hub = DOCKER_HUB_NAMES.includes(written);
  const host = hub ? DOCKER_HUB : written;
  const [name = "", digest, ...extra] = rest.slice(slash + 1).split("@");
  if (extra.length > 0) throw bad("more than one @");
  if (digest !== undefined && !DIGEST.test(digest)) {
    throw bad(`"${digest}" is not sha256: followed by 64 lower-case hex digits`);
  }
  const colon = name.lastIndexOf(":");
  const path = colon < 0 ? name : name.slice(0, colon);
  // As docker reads Docker Hub names: `alpine` is the official `library/alpine`.
  const repository = hub && !path.includes("/") ? `library/${path}` : path;
  const tag = colon < 0 ? undefined : name.slice(colon + 1);
  if (!REPOSITORY.test(repository)) {
    throw bad(`"${repository}" is not a repository (lower-case path components)`);
  }
  if (tag !== undefined && !TAG.test(tag)) throw bad(`"${tag}" is not a valid tag`);
  return {
    host,
    repository,
    tag: tag ?? (digest === undefined ? "latest" : undefined),
    digest,
  };
}

/** What the manifest is asked for by: the digest when pinned, else the tag. */
export function manifestReference(ref: OciReference): string {
  return ref.digest ?? ref.tag ?? "latest";
}

/** `oci://host/repository[:tag][@digest]`. */
export function formatOciReference(ref: OciReference): string {
  const tag = ref.tag === undefined ? "" : `:${ref.tag}`;
  const digest = ref.digest === undefined ? "" : `@${ref.digest}`;
  return `oci://${ref.host}/${ref.repository}${tag}${digest}`;
}

/**
 * The base URL (`https://host[:port]`) of the registry at `host`: plain http for loopback hosts
 * and for hosts listed in `insecureRegistries` (an entry without a port covers every port);
 * `https://registry-1.docker.io` for Docker Hub.
 */
export function registryBaseUrl(host: string, insecureRegistries: readonly string[]): string {
  const bare = hostName(host);
  const insecure = insecureRegistries.some((entry) => {
    const listed = entry.toLowerCase();
    return listed === host || listed === bare;
  });
  if (host === DOCKER_HUB && !insecure) return `https://${DOCKER_HUB_API}`;
  return `${insecure || isLoopbackHost(host) ? "http" : "https"}://${host}`;
}
