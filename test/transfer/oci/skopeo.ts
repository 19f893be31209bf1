/**
 * OCI artifacts as others push them: an OCI image layout written here (`oci-layout`, `index.json`,
 * `blobs/sha256/*`, as the image-spec describes it and oras writes it), pushed to a registry by
 * Debian's `skopeo` (containers/image), which keeps manifests byte for byte (so digests computed
 * here are the registry's), or converts them (`--format v2s2`).
 */
import { execFile, execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";

/** Why skopeo tests cannot run here, or undefined when they can. */
export function missingSkopeo(): string | undefined {
  try {
    execFileSync("skopeo", ["--version"], { stdio: "ignore" });
    return undefined;
  } catch {
    return "skopeo is absent (apt-get install skopeo)";
  }
}

/** Media types used by the layouts of the tests. */
export const MEDIA = {
  manifest: "application/vnd.oci.image.manifest.v1+json",
  index: "application/vnd.oci.image.index.v1+json",
  empty: "application/vnd.oci.empty.v1+json",
  imageConfig: "application/vnd.oci.image.config.v1+json",
  tar: "application/vnd.oci.image.layer.v1.tar",
  tarGzip: "application/vnd.oci.image.layer.v1.tar+gzip",
  tarZstd: "application/vnd.oci.image.layer.v1.tar+zstd",
  artifact: "application/vnd.axvisor.guest-image.v1",
} as const;

/** An OCI content descriptor, with a platform for an index's children. */
export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
  platform?: { architecture: string; os: string; variant?: string };
}

/** One OCI image layout on disk, built blob by blob. */
export class OciLayout {
  readonly dir: string;
  #ready: Promise<void> | undefined;

  constructor(dir: string) {
    this.dir = dir;
  }

  /** Stores `data` (JSON for an object) as a blob; resolves with its descriptor. */
  async blob(
    data: Buffer | object,
    mediaType: string,
    extra: Pick<Descriptor, "annotations" | "platform"> = {},
  ): Promise<Descriptor> {
    this.#ready ??= mkdir(join(this.dir, "blobs", "sha256"), { recursive: true }).then(() =>
      writeFile(join(this.dir, "oci-layout"), '{"imageLayoutVersion":"1.0.0"}'),
    );
    await this.#ready;
    const bytes = Buffer.isBuffer(data) ? data : Buffer.from(JSON.stringify(data));
    const hex = createHash("sha256").update(bytes).digest("hex");
    await writeFile(join(this.dir, "blobs", "sha256", hex), bytes);
    return { mediaType, digest: `sha256:${hex}`, size: bytes.length, ...extra };
  }

  /** An artifact manifest (empty config, `artifactType`) of `layers`, as oras pushes them. */
  async artifact(layers: Descriptor[]): Promise<Descriptor> {
    const config = await this.blob(Buffer.from("{}"), MEDIA.empty);
    const manifest = { schemaVersion: 2, mediaType: MEDIA.manifest, artifactType: MEDIA.artifact };
    return this.blob({ ...manifest, config, layers }, MEDIA.manifest);
  }

  /** An image manifest with a real image config for `architecture` (what `--format v2s2` needs). */
  async image(
    layers: Descriptor[],
    architecture = "arm64",
    extra: Pick<Descriptor, "platform"> = {},
  ) {
    const config = await this.blob(
      { architecture, os: "linux", rootfs: { type: "layers", diff_ids: [] }, config: {} },
      MEDIA.imageConfig,
    );
    const manifest = { schemaVersion: 2, mediaType: MEDIA.manifest, config, layers };
    return this.blob(manifest, MEDIA.manifest, extra);
  }

  /** An image index of `children`. */
  index(children: Descriptor[]): Promise<Descriptor> {
    return this.blob(
      { schemaVersion: 2, mediaType: MEDIA.index, manifests: children },
      MEDIA.index,
    );
  }

  /** Names `top` (a manifest or an index) `v1` in the layout's `index.json`: `oci:DIR:v1`. */
  async tag(top: Descriptor): Promise<string> {
    const named = { ...top, annotations: { "org.opencontainers.image.ref.name": "v1" } };
    await writeFile(
      join(this.dir, "index.json"),
      JSON.stringify({ schemaVersion: 2, manifests: [named] }),
    );
    return `oci:${this.dir}:v1`;
  }
}

/** `skopeo copy [...flags] SOURCE docker://DESTINATION` to a plain-HTTP registry. */
export async function skopeoCopy(
  source: string,
  destination: string,
  flags: string[] = [],
  env: Record<string, string | undefined> = process.env,
): Promise<void> {
  await promisify(execFile)(
    "skopeo",
    ["copy", "--quiet", "--dest-tls-verify=false", ...flags, source, `docker://${destination}`],
    { env },
  );
}
