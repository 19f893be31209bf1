/**
 * Image indexes (`skopeo copy --all`, `docker buildx --platform a,b`, `oras manifest index`): the
 * platform a registry entry's `arch` names, and the child manifest that matches it. Registries say
 * `arch` as `uname -m` does (`aarch64`, `x86_64`, `riscv64`, `loongarch64`); indexes say it as Go
 * does (`arm64`, `amd64`, `riscv64`, `loong64`), with a variant for some (`arm64/v8`, `arm/v7`).
 */
import { TransferError } from "../http.js";
import type { Descriptor } from "./manifest.js";

/** What an index's child is for (OCI image index `platform`). */
export interface Platform {
  architecture: string;
  os?: string;
  variant?: string;
}

/** A child of an image index. */
export interface IndexEntry extends Descriptor {
  platform?: Platform;
}

/** An architecture as Go names it, with its variant when the name says one. */
interface Arch {
  architecture: string;
  variant?: string;
}

/** `uname -m` and Debian names of architectures, as Go names them. */
const GO_NAMES = new Map<string, Arch>([
  ["aarch64", { architecture: "arm64" }],
  ["x86_64", { architecture: "amd64" }],
  ["x86-64", { architecture: "amd64" }],
  ["loongarch64", { architecture: "loong64" }],
  ["i386", { architecture: "386" }],
  ["i686", { architecture: "386" }],
  ["armv7l", { architecture: "arm", variant: "v7" }],
  ["armhf", { architecture: "arm", variant: "v7" }],
  ["armv6l", { architecture: "arm", variant: "v6" }],
]);

/** The variant an architecture has when none is given (as containerd's platform matcher has it). */
const DEFAULT_VARIANT = new Map([
  ["arm64", "v8"],
  ["amd64", "v1"],
  ["arm", "v7"],
]);

/** `arch` in Go's names, with the variant the name says (`armv7l`: `arm`, `v7`), if any. */
function goArch(arch: string): Arch {
  return GO_NAMES.get(arch.toLowerCase()) ?? { architecture: arch.toLowerCase() };
}

/** What a child is for, in Go's names, with its variant or the default one. */
function offered({ architecture, variant }: Platform): Arch {
  const named = goArch(architecture);
  const given = variant?.toLowerCase() || named.variant;
  return {
    architecture: named.architecture,
    variant: given ?? DEFAULT_VARIANT.get(named.architecture),
  };
}

/** `os/architecture[/variant]` of an index's child, as docker prints platforms. */
export function formatPlatform(child: IndexEntry): string {
  const { platform } = child;
  if (platform === undefined) return `${child.digest} (no platform)`;
  return [platform.os, platform.architecture, platform.variant]
    .filter((part) => part !== undefined && part !== "")
    .join("/");
}

/**
 * True for the attestation (provenance, SBOM) manifests `docker buildx` adds beside each image of
 * an index: annotated `vnd.docker.reference.type: attestation-manifest`, platform `unknown/unknown`.
 */
function isAttestation(child: IndexEntry): boolean {
  const { platform, annotations } = child;
  return (
    annotations?.["vnd.docker.reference.type"] === "attestation-manifest" ||
    (platform?.os === "unknown" && platform.architecture === "unknown")
  );
}

/** How many children an error lists, and how much of each one's platform. */
const LISTED = 8;
const LISTED_CHARS = 80;

/**
 * The child of an image index to pull for a registry entry of `arch`, once the attestations
 * `docker buildx` adds are passed over: the only child there is (whatever its platform says); else the first one for the same architecture, one with the
 * variant `arch` names (or the default one: `arm64/v8` for `aarch64`) before others, as the image
 * index specification asks ("the first matching entry SHOULD be used").
 *
 * @throws TransferError naming `where` and listing the platforms the index has when none matches.
 */
export function pickPlatformManifest(
  children: readonly IndexEntry[],
  arch: string | undefined,
  where: string,
): IndexEntry {
  const attestations = children.filter(isAttestation);
  if (attestations.length > 0 && attestations.length === children.length) {
    throw new TransferError(where, "is an image index that holds only attestations, no image", {
      retryable: false,
    });
  }
  if (attestations.length > 0) children = children.filter((child) => !isAttestation(child));
  if (children.length === 1) return children[0]!;
  const wanted = arch === undefined ? undefined : goArch(arch);
  const preferred = wanted?.variant ?? DEFAULT_VARIANT.get(wanted?.architecture ?? "");
  const matching = children.filter((child) => {
    const platform = child.platform === undefined ? undefined : offered(child.platform);
    return (
      wanted !== undefined &&
      platform?.architecture === wanted.architecture &&
      (wanted.variant === undefined || platform.variant === wanted.variant)
    );
  });
  const picked =
    matching.find((child) => offered(child.platform!).variant === preferred) ?? matching[0];
  if (picked !== undefined) return picked;
  const platforms = children.slice(0, LISTED).map((child) => {
    const platform = formatPlatform(child);
    const long = child.platform !== undefined && platform.length > LISTED_CHARS;
    return long ? `${platform.slice(0, LISTED_CHARS)}...` : platform;
  });
  if (children.length > LISTED) platforms.push(`${children.length - LISTED} more`);
  const goName = [wanted?.architecture, wanted?.variant].filter(Boolean).join("/");
  const forArch =
    wanted === undefined ? "" : ` for ${arch}${goName === arch ? "" : ` (${goName})`}`;
  const reason =
    children.length === 0
      ? "is an empty image index"
      : `is an image index without a manifest${forArch}: it has ${platforms.join(", ")}`;
  throw new TransferError(where, reason, {
    retryable: false,
    hint:
      "the entry's arch must be one of the index's platforms (aarch64 = arm64, x86_64 = amd64, " +
      "loongarch64 = loong64), or its URL pin one manifest: oci://HOST/REPOSITORY@sha256:DIGEST",
  });
}
