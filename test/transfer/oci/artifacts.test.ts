/**
 * OCI artifacts as oras and skopeo push them, pulled through `oci://` entries by the CLI: built
 * here as OCI image layouts, pushed by Debian's skopeo to a real docker-registry. An artifact of
 * several archives (one per release, a README beside them), an untitled multi-layer artifact, an
 * image index of several platforms (and of one), a Docker v2 schema 2 manifest, an untitled zstd
 * layer, a layer of a generic media type.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFile, readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import {
  cliEnv,
  makeTar,
  makeTarGz,
  registryToml,
  runCli,
  sha256,
  tempDir,
  type CliRun,
  type TestEntry,
} from "../../helpers/images.js";
import { missingRegistry, startDockerRegistry, type DockerRegistry } from "./docker-registry.js";
import { MEDIA, OciLayout, missingSkopeo, skopeoCopy, type Descriptor } from "./skopeo.js";

const TITLE = "org.opencontainers.image.title";

/** The blob's sha256 (the registry entry's) from its descriptor. */
const hex = (d: Descriptor) => d.digest.slice("sha256:".length);

/** Asserts that `run` failed with `error: <message>` as its error line. */
function assertError(run: CliRun, message: string): void {
  assert.equal(run.code, 1, run.stderr);
  const line = run.stderr.split("\n").find((l) => l.startsWith("error: "));
  assert.equal(line?.replace(/[0-9a-f]{64}/, "<sha256>"), `error: ${message}`);
}

describe(
  "OCI artifacts as oras and skopeo push them, pulled by the CLI",
  { skip: missingRegistry() ?? missingSkopeo() },
  () => {
    let registry: DockerRegistry;
    let root: { path: string; cleanup: () => Promise<void> };
    const entries: TestEntry[] = [];
    /** The layers pushed, by a short name. */
    const sources: Record<string, Descriptor> = {};
    let registryFile: string;

    /** Builds a layout in `name/`, lets `build` fill it, tags what it returns, pushes it. */
    async function push(
      name: string,
      repository: string,
      build: (layout: OciLayout) => Promise<Descriptor>,
      flags: string[] = [],
    ): Promise<string> {
      const layout = new OciLayout(join(root.path, "layouts", name));
      await skopeoCopy(
        await layout.tag(await build(layout)),
        `${registry.host}/${repository}`,
        flags,
      );
      return `oci://${registry.host}/${repository}`;
    }

    function entry(name: string, url: string, layer: Descriptor | string, arch = "aarch64") {
      const sha = typeof layer === "string" ? layer : hex(layer);
      entries.push({ name, version: "1", url, sha256: sha, arch });
    }

    const pull = (store: string, ...args: string[]) =>
      runCli(["-S", join(root.path, store), "-R", registryFile, ...args], {
        env: cliEnv({ DOCKER_CONFIG: join(root.path, "no-docker-config") }),
      });

    const alpine14 = makeTarGz([{ name: "rootfs-aarch64-alpine.img", data: "alpine 0.0.14\n" }]);
    const alpine15 = makeTar([{ name: "rootfs-aarch64-alpine.img", data: "alpine 0.0.15\n" }]).then(
      (tar) => execFileSync("xz", ["-c", "-T1"], { input: tar }),
    );
    const kernelOf = (arch: string) => makeTarGz([{ name: `qemu-${arch}/Image`, data: arch }]);

    before(async () => {
      registry = await startDockerRegistry();
      root = await tempDir("axi-oci-artifacts-");

      // One artifact, one archive per release and a README, as `oras push` with several files.
      const alpine = await push("alpine", "guest/alpine:releases", async (l) => {
        const readme = await l.blob(Buffer.from("# alpine\n"), "text/markdown", {
          annotations: { [TITLE]: "README.md" },
        });
        sources.a14 = await l.blob(await alpine14, MEDIA.tarGzip, {
          annotations: { [TITLE]: "rootfs-aarch64-alpine.img-0.0.14.tar.gz" },
        });
        sources.a15 = await l.blob(await alpine15, "application/vnd.oci.image.layer.v1.tar+xz", {
          annotations: { [TITLE]: "rootfs-aarch64-alpine.img-0.0.15.tar.xz" },
        });
        return l.artifact([readme, sources.a14, sources.a15]);
      });
      entries.push(
        { name: "alpine", version: "0.0.14", url: alpine, sha256: hex(sources.a14!) },
        { name: "alpine", version: "0.0.15", url: alpine, sha256: hex(sources.a15!) },
      );

      // No titles at all: a README, a kernel and a rootfs.
      const untitled = await push("untitled", "guest/qemu:untitled", async (l) => {
        const readme = await l.blob(Buffer.from("# qemu\n"), "text/markdown");
        sources.kernel = await l.blob(await kernelOf("kernel"), MEDIA.tarGzip);
        sources.rootfs = await l.blob(
          await makeTarGz([{ name: "rootfs.img", data: "rootfs" }]),
          MEDIA.tarGzip,
        );
        return l.artifact([readme, sources.kernel, sources.rootfs]);
      });
      entry("kernel", untitled, sources.kernel!);
      entry("rootfs", untitled, sources.rootfs!);
      entry("stale", untitled, sha256("an archive the artifact does not hold"));
      const notes = await push("notes", "guest/notes:v1", async (l) => {
        const readme = await l.blob(Buffer.from("# notes\n"), "text/markdown", {
          annotations: { [TITLE]: "README.md" },
        });
        sources.notes = await l.blob(await kernelOf("notes"), MEDIA.tarGzip, {
          annotations: { [TITLE]: "notes.tar.gz" },
        });
        return l.artifact([readme, sources.notes]);
      });
      entry("notes", notes, sha256("an older archive"));

      // An image index of three platforms (`skopeo copy --all`), and one of a single platform.
      const platforms = [
        { architecture: "arm64", os: "linux", variant: "v8" },
        { architecture: "amd64", os: "linux" },
        { architecture: "arm", os: "linux", variant: "v7" },
      ];
      const multi = await push(
        "multi",
        "guest/linux:multiarch",
        async (l) => {
          const children = [];
          for (const platform of platforms) {
            const layer = await l.blob(await kernelOf(platform.architecture), MEDIA.tarGzip);
            sources[platform.architecture] = layer;
            children.push(await l.image([layer], platform.architecture, { platform }));
          }
          return l.index(children);
        },
        ["--all"],
      );
      entry("linux-a64", multi, sources.arm64!, "aarch64");
      entry("linux-x64", multi, sources.amd64!, "x86_64");
      entry("linux-rv", multi, sources.amd64!, "riscv64");
      // The same as a Docker manifest list of Docker v2 schema 2 manifests.
      const list = `${registry.host}/guest/linux:list`;
      await skopeoCopy(`oci:${join(root.path, "layouts", "multi")}:v1`, list, [
        "--all",
        "--format",
        "v2s2",
      ]);
      entry("list-x64", `oci://${list}`, sources.amd64!, "x86_64");
      const single = await push(
        "single",
        "guest/single:v1",
        async (l) => {
          sources.single = await l.blob(await kernelOf("single"), MEDIA.tarGzip);
          const platform = { architecture: "amd64", os: "linux" };
          return l.index([await l.image([sources.single], "amd64", { platform })]);
        },
        ["--all"],
      );
      entry("single", single, sources.single!, "x86_64");

      // A Docker v2 schema 2 manifest: skopeo converts the OCI image on the way.
      const docker = await push(
        "docker",
        "guest/docker:v1",
        async (l) => {
          sources.docker = await l.blob(await kernelOf("docker"), MEDIA.tarGzip);
          return l.image([sources.docker]);
        },
        ["--format", "v2s2"],
      );
      entry("docker", docker, sources.docker!);

      // An untitled zstd layer, and an untitled xz layer of a generic media type.
      const zstdTar = execFileSync("zstd", ["-q", "-c"], {
        input: await makeTar([{ name: "z", data: "zstd" }]),
      });
      const zstd = await push("zstd", "guest/zstd:v1", async (l) => {
        sources.zstd = await l.blob(zstdTar, MEDIA.tarZstd);
        return l.artifact([sources.zstd]);
      });
      entry("zst", zstd, sources.zstd!);
      const xzTar = execFileSync("xz", ["-c"], {
        input: await makeTar([{ name: "x", data: "xz" }]),
      });
      const raw = await push("raw", "guest/raw:v1", async (l) => {
        sources.raw = await l.blob(xzTar, "application/octet-stream");
        return l.artifact([sources.raw]);
      });
      entry("raw", raw, sources.raw!);
      entry("missing", `oci://${registry.host}/guest/zstd:nope`, sources.zstd!);

      // The same zstd artifact again, in a repository that serves as a mirror.
      await push("zstd-mirror", "cache/zstd:v1", async (l) => l.artifact([sources.zstd!]));

      registryFile = join(root.path, "registry.toml");
      await writeFile(registryFile, registryToml(entries));
    });
    after(async () => {
      await registry?.close();
      await root?.cleanup();
    });

    it("picks, among several archive layers, the one whose digest is the entry's sha256", async () => {
      const run = await pull("alpine", "pull", "alpine:0.0.14", "alpine:0.0.15");
      assert.equal(run.code, 0, run.stderr);
      const store = join(root.path, "alpine");
      for (const version of ["0.0.14", "0.0.15"]) {
        const image = join(store, `alpine-${version}`, "rootfs-aarch64-alpine.img");
        assert.equal(await readFile(image, "utf8"), `alpine ${version}\n`);
      }
      const archives = (await readdir(store)).filter((n) => n.includes(".tar"));
      assert.deepEqual(archives.sort(), ["alpine-0.0.14.tar.gz", "alpine-0.0.15.tar.xz"]);
    });

    it("finds untitled layers by digest, and says when none of them is the entry's", async () => {
      const run = await pull("untitled", "pull", "kernel", "rootfs");
      assert.equal(run.code, 0, run.stderr);
      const store = join(root.path, "untitled");
      assert.equal(await readFile(join(store, "kernel", "qemu-kernel", "Image"), "utf8"), "kernel");
      assert.equal(await readFile(join(store, "rootfs", "rootfs.img"), "utf8"), "rootfs");

      assertError(
        await pull("untitled", "pull", "notes"),
        `checksum mismatch for image notes: expected <sha256>, but oci://${registry.host}/guest/notes:v1 holds the archive layer ${sources.notes!.digest}`,
      );
      assertError(
        await pull("untitled", "pull", "stale"),
        `checksum mismatch for image stale: expected <sha256>, but none of the 3 layers of oci://${registry.host}/guest/qemu:untitled has that digest`,
      );
    });

    it("pulls an image index's (or manifest list's) manifest for the entry's arch, and lists the platforms when none fits", async () => {
      const run = await pull("index", "pull", "linux-a64", "linux-x64", "list-x64", "single");
      assert.equal(run.code, 0, run.stderr);
      const kernel = (image: string, arch: string) =>
        readFile(join(root.path, "index", image, `qemu-${arch}`, "Image"), "utf8");
      assert.equal(await kernel("linux-a64", "arm64"), "arm64");
      assert.equal(await kernel("linux-x64", "amd64"), "amd64");
      assert.equal(await kernel("list-x64", "amd64"), "amd64");
      assert.equal(await kernel("single", "single"), "single");

      const none = await pull("index", "pull", "linux-rv");
      const url = `oci://${registry.host}/guest/linux:multiarch`;
      assertError(
        none,
        `linux-rv: cannot download ${url}: is an image index without a manifest for riscv64: it has linux/arm64/v8, linux/amd64, linux/arm/v7`,
      );
      assert.match(none.stderr, /^hint: the entry's arch must be one of the index's platforms/m);
    });

    it("pulls a Docker v2 schema 2 manifest", async () => {
      const run = await pull("docker", "pull", "docker");
      assert.equal(run.code, 0, run.stderr);
      const store = join(root.path, "docker");
      assert.equal(await readFile(join(store, "docker", "qemu-docker", "Image"), "utf8"), "docker");
      assert.deepEqual(
        (await readdir(store)).filter((n) => n.includes(".tar")),
        ["docker.tar.gz"],
      );
    });

    it("names an untitled archive by its real format: the media type's, else the first bytes'", async () => {
      const run = await pull("formats", "pull", "zst", "raw");
      assert.equal(run.code, 0, run.stderr);
      const store = join(root.path, "formats");
      assert.equal(await readFile(join(store, "zst", "z"), "utf8"), "zstd");
      assert.equal(await readFile(join(store, "raw", "x"), "utf8"), "xz");
      const archives = (await readdir(store)).filter((n) => n.includes(".tar"));
      assert.deepEqual(archives.sort(), ["raw.tar.xz", "zst.tar.zst"]);
    });

    it("names the image on every status line, and the URL once when the tag is not there", async () => {
      const mirror = `oci://${registry.host}/guest/=oci://${registry.host}/cache/`;
      const run = await pull("mirrored", "--mirror", mirror, "pull", "zst");
      assert.equal(run.code, 0, run.stderr);
      assert.match(
        run.stderr,
        new RegExp(`^zst: downloading from oci://${registry.host}/cache/zstd:v1$`, "m"),
      );

      assertError(
        await pull("missing", "pull", "missing"),
        `missing: cannot download oci://${registry.host}/guest/zstd:nope: tag nope: HTTP 404 Not Found: MANIFEST_UNKNOWN manifest unknown`,
      );
    });
  },
);
