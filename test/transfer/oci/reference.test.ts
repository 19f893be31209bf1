import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { chmod, mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { AxError } from "../../../src/errors.js";
import { parseChallenge } from "../../../src/transfer/oci/client.js";
import { loginCredentials, loginSource } from "../../../src/transfer/oci/credentials.js";
import {
  findArchiveLayer,
  layerCompression,
  layerMediaType,
  type ImageManifest,
} from "../../../src/transfer/oci/manifest.js";
import {
  formatOciReference,
  isOciUrl,
  parseOciReference,
  registryBaseUrl,
} from "../../../src/transfer/oci/reference.js";
import { tempDir } from "../../helpers/images.js";

const DIGEST = `sha256:${"ab".repeat(32)}`;

describe("oci:// references", () => {
  it("parses tags, digests, ports and nested repositories", () => {
    assert.deepEqual(parseOciReference("oci://ghcr.io/arceos-hypervisor/guests/linux:0.0.26"), {
      host: "ghcr.io",
      repository: "arceos-hypervisor/guests/linux",
      tag: "0.0.26",
      digest: undefined,
    });
    assert.deepEqual(parseOciReference(`oci://127.0.0.1:5000/a/b@${DIGEST}`), {
      host: "127.0.0.1:5000",
      repository: "a/b",
      tag: undefined,
      digest: DIGEST,
    });
    assert.equal(parseOciReference(`OCI://Harbor.Example.org/p/img:v1@${DIGEST}`).digest, DIGEST);
    assert.equal(parseOciReference("oci://[::1]:5000/img").tag, "latest");
  });

  it("formats what it parses", () => {
    for (const url of ["oci://ghcr.io/a/b:1.0", `oci://h:1/a@${DIGEST}`, `oci://h/a:t@${DIGEST}`]) {
      assert.equal(formatOciReference(parseOciReference(url)), url);
    }
    assert.equal(isOciUrl("oci://h/a"), true);
    assert.equal(isOciUrl("https://h/a"), false);
  });

  it("refuses malformed references, naming the URL and the part at fault", () => {
    const cases: [string, RegExp][] = [
      ["oci://ghcr.io", /no repository/],
      ["oci://ghcr.io/Upper/case:1", /"Upper\/case" is not a repository/],
      ["oci://ghcr.io/a:bad/tag", /is not a repository|is not a valid tag/],
      ["oci://ghcr.io/a@sha256:1234", /"sha256:1234" is not sha256:/],
      ["oci://ghcr.io/a:-x", /"-x" is not a valid tag/],
      ["oci://bad_host!/a:1", /is not a host/],
      ["oci://127.0.0.1:99999/a:1", /"127\.0\.0\.1:99999" is not a host/],
      ["oci://[::::]/a:1", /is not a host/],
      ["https://ghcr.io/a:1", /expected oci:\/\//],
    ];
    for (const [url, reason] of cases) {
      assert.throws(
        () => parseOciReference(url),
        (err) => err instanceof AxError && err.message.includes(url) && reason.test(err.message),
        url,
      );
    }
  });

  it("uses plain HTTP only for loopback hosts and insecure_registries", () => {
    assert.equal(registryBaseUrl("ghcr.io", []), "https://ghcr.io");
    assert.equal(registryBaseUrl("localhost:5000", []), "http://localhost:5000");
    assert.equal(registryBaseUrl("127.0.0.1:5000", []), "http://127.0.0.1:5000");
    assert.equal(registryBaseUrl("[::1]:5000", []), "http://[::1]:5000");
    assert.equal(registryBaseUrl("harbor.lan:8080", ["harbor.lan:8080"]), "http://harbor.lan:8080");
    assert.equal(
      registryBaseUrl("harbor.lan:8443", ["harbor.lan:8080"]),
      "https://harbor.lan:8443",
    );
    assert.equal(registryBaseUrl("harbor.lan:9000", ["Harbor.lan"]), "http://harbor.lan:9000");
    assert.equal(registryBaseUrl("127.example.org", []), "https://127.example.org");
  });
});

describe("Docker Hub names, as docker reads them", () => {
  it("docker.io (or index.docker.io) is the Hub; a one-part repository is under library/", () => {
    const official = parseOciReference("oci://docker.io/alpine:3.20");
    assert.deepEqual(official, {
      host: "docker.io",
      repository: "library/alpine",
      tag: "3.20",
      digest: undefined,
    });
    assert.equal(formatOciReference(official), "oci://docker.io/library/alpine:3.20");
    for (const spelled of ["index.docker.io", "registry-1.docker.io", "Docker.IO"]) {
      const ref = parseOciReference(`oci://${spelled}/arceos/guest@${DIGEST}`);
      assert.equal(ref.host, "docker.io", spelled);
      assert.equal(ref.repository, "arceos/guest");
    }
    assert.equal(registryBaseUrl("docker.io", []), "https://registry-1.docker.io");
    // Other hosts keep one-part repositories as they are.
    assert.equal(parseOciReference("oci://ghcr.io/alpine:1").repository, "alpine");
    assert.equal(parseOciReference("oci://docker.io.evil.example/alpine:1").repository, "alpine");
  });
});

describe("WWW-Authenticate challenges", () => {
  it("reads a Bearer challenge as ghcr.io sends it", () => {
    const value =
      'Bearer realm="https://ghcr.io/token",service="ghcr.io",scope="repository:a/b:pull"';
    assert.deepEqual(parseChallenge(value), {
      scheme: "bearer",
      params: { realm: "https://ghcr.io/token", service: "ghcr.io", scope: "repository:a/b:pull" },
    });
  });

  it("reads Basic, quoted commas and escapes, and unquoted values", () => {
    assert.deepEqual(parseChallenge('Basic realm="basic-realm"'), {
      scheme: "basic",
      params: { realm: "basic-realm" },
    });
    const odd = parseChallenge('Bearer realm="a, \\"b\\"", service=svc , scope="x"');
    assert.deepEqual(odd?.params, { realm: 'a, "b"', service: "svc", scope: "x" });
    assert.equal(parseChallenge(undefined), undefined);
  });
});

describe("docker login credentials", () => {
  let dir: { path: string; cleanup: () => Promise<void> };
  before(async () => {
    dir = await tempDir("axi-oci-creds-");
  });
  after(() => dir.cleanup());

  async function withConfig(name: string, config: unknown): Promise<Record<string, string>> {
    await mkdir(join(dir.path, name));
    const text = typeof config === "string" ? config : JSON.stringify(config);
    await writeFile(join(dir.path, name, "config.json"), text);
    return { DOCKER_CONFIG: join(dir.path, name) };
  }

  it("finds `auth` and username/password entries by host, whatever the key's form", async () => {
    const env = await withConfig("auths", {
      auths: {
        "https://ghcr.io/v1/": {
          auth: Buffer.from("octocat:ghp_token:with:colons").toString("base64"),
        },
        "harbor.lan:8443": { username: "robot$ci", password: "pw" },
        "empty.example": {},
        "acr.example": { auth: "", identitytoken: "refresh-me" },
      },
    });
    const file = join(env.DOCKER_CONFIG!, "config.json");
    assert.deepEqual(await loginSource("ghcr.io", env), {
      file,
      stored: {
        kind: "password",
        username: "octocat",
        password: "ghp_token:with:colons",
        source: file,
      },
    });
    assert.deepEqual(await loginSource("harbor.lan:8443", env), {
      file,
      stored: { kind: "password", username: "robot$ci", password: "pw", source: file },
    });
    assert.deepEqual(await loginSource("acr.example", env), {
      file,
      stored: { kind: "identity-token", token: "refresh-me", source: file },
    });
    assert.deepEqual(await loginSource("harbor.lan", env), { file }, "the port matters");
    assert.deepEqual(await loginSource("empty.example", env), { file });
  });

  it("names the host's credential helper: credHelpers[host] first, then credsStore", async () => {
    const env = await withConfig("helpers", {
      auths: { "ghcr.io": { auth: Buffer.from("a:b").toString("base64") } },
      credHelpers: { "Harbor.lan:8443": "pass", "ecr.example": "ecr-login" },
      credsStore: "desktop",
    });
    const file = join(env.DOCKER_CONFIG!, "config.json");
    assert.deepEqual(await loginSource("harbor.lan:8443", env), {
      file,
      helper: { program: "docker-credential-pass", setting: 'credHelpers["Harbor.lan:8443"]' },
    });
    assert.deepEqual(await loginSource("ghcr.io", env), {
      file,
      helper: { program: "docker-credential-desktop", setting: "credsStore" },
    });
    const bad = await withConfig("bad-helper", { credsStore: "../../tmp/x" });
    await assert.rejects(loginSource("ghcr.io", bad), (err) => {
      assert.ok(err instanceof AxError);
      assert.match(
        err.message,
        /credsStore "\.\.\/\.\.\/tmp\/x" is not the name of a credential helper/,
      );
      return true;
    });
  });

  it("finds Docker Hub's login under docker login's key, and asks helpers for it by that key", async () => {
    const hub = "https://index.docker.io/v1/";
    const env = await withConfig("hub", {
      auths: { [hub]: { auth: Buffer.from("arceos:hub-token").toString("base64") } },
    });
    const file = join(env.DOCKER_CONFIG!, "config.json");
    assert.deepEqual(await loginSource("docker.io", env), {
      file,
      stored: { kind: "password", username: "arceos", password: "hub-token", source: file },
    });
    // A helper is asked for the Hub's login as docker asks: by its server URL.
    const bin = join(dir.path, "hub-bin");
    await mkdir(bin);
    const program = join(bin, "docker-credential-hubtest");
    await writeFile(
      program,
      [
        "#!/bin/sh",
        "input=$(cat)",
        `[ "$1 $input" = "get ${hub}" ] || { echo "credentials not found in native keychain"; exit 1; }`,
        `printf '{"ServerURL":"%s","Username":"arceos","Secret":"from-helper"}\\n' "$input"`,
      ].join("\n") + "\n",
    );
    await chmod(program, 0o755);
    const helped = await withConfig("hub-helper", { credsStore: "hubtest" });
    const source = await loginSource("docker.io", helped);
    const login = await loginCredentials(source, "docker.io", {
      env: { ...helped, PATH: `${bin}:${process.env.PATH}` },
    });
    assert.deepEqual(login, {
      kind: "password",
      username: "arceos",
      password: "from-helper",
      source: "docker-credential-hubtest",
    });
  });

  it(
    "names a FIFO in the Docker config's place, never waiting on it",
    { timeout: 20_000 },
    async () => {
      const fifoDir = join(dir.path, "fifo");
      await mkdir(fifoDir);
      execFileSync("mkfifo", [join(fifoDir, "config.json")]);
      await assert.rejects(loginSource("ghcr.io", { DOCKER_CONFIG: fifoDir }), (err) => {
        assert.ok(err instanceof AxError);
        assert.match(err.message, /config\.json: a FIFO, not a regular file$/);
        return true;
      });
    },
  );

  it("has none without a file, and names a file that is not JSON", async () => {
    const none = join(dir.path, "none");
    assert.deepEqual(await loginSource("ghcr.io", { DOCKER_CONFIG: none }), {
      file: join(none, "config.json"),
    });
    const env = await withConfig("broken", "{ not json");
    await assert.rejects(
      loginSource("ghcr.io", env),
      (err) =>
        err instanceof AxError && err.message.startsWith(join(env.DOCKER_CONFIG!, "config.json")),
    );
  });
});

describe("the archive layer of a manifest", () => {
  const layer = (title?: string, digest = DIGEST, mediaType = "application/octet-stream") => ({
    mediaType,
    digest,
    size: 1,
    ...(title === undefined ? {} : { annotations: { "org.opencontainers.image.title": title } }),
  });
  const manifest = (...layers: ReturnType<typeof layer>[]): ImageManifest => ({
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    config: layer(),
    layers,
  });
  const other = `sha256:${"cd".repeat(32)}`;
  const third = `sha256:${"ef".repeat(32)}`;

  it("is the one whose digest is the entry's sha256, whatever the titles say", () => {
    const m = manifest(
      layer("a-0.1.tar.gz"),
      layer("a-0.2.tar.gz", other),
      layer("README.md", third),
    );
    assert.equal(findArchiveLayer(m, "cd".repeat(32))?.digest, other);
    assert.equal(findArchiveLayer(m, "ef".repeat(32))?.digest, third);
  });

  it("without a digest to go by: the only layer, the only one titled as an archive, or of a tar type", () => {
    assert.equal(findArchiveLayer(manifest(layer()))?.digest, DIGEST);
    const titled = manifest(layer("README.md"), layer("linux.TAR.XZ", other));
    assert.equal(findArchiveLayer(titled)?.digest, other);
    const tgz = "application/vnd.oci.image.layer.v1.tar+gzip";
    const typed = manifest(layer(undefined, DIGEST, "text/markdown"), layer(undefined, other, tgz));
    assert.equal(findArchiveLayer(typed)?.digest, other);
    assert.equal(findArchiveLayer(typed, "00".repeat(32))?.digest, other, "a sha256 no layer has");
  });

  it("cannot be told among several archives, or none", () => {
    const tgz = "application/vnd.oci.image.layer.v1.tar+gzip";
    for (const m of [
      manifest(layer("a.tar.gz"), layer("b.tgz", other)),
      manifest(layer(), layer(undefined, other)),
      manifest(layer(undefined, DIGEST, tgz), layer(undefined, other, tgz)),
      manifest(),
    ]) {
      assert.equal(findArchiveLayer(m), undefined);
    }
  });

  it("gets an OCI layer media type from the archive's name when published", () => {
    assert.equal(layerMediaType("linux.tar.gz"), "application/vnd.oci.image.layer.v1.tar+gzip");
    assert.equal(layerMediaType("linux.tgz"), "application/vnd.oci.image.layer.v1.tar+gzip");
    assert.equal(layerMediaType("linux.tar.zst"), "application/vnd.oci.image.layer.v1.tar+zstd");
    assert.equal(layerMediaType("linux.tar.xz"), "application/vnd.oci.image.layer.v1.tar+xz");
    assert.equal(layerMediaType("linux.tar"), "application/vnd.oci.image.layer.v1.tar");
  });

  it("reads the compression of tar layer media types, and of no other type", () => {
    const cases: [string, string | undefined][] = [
      ["application/vnd.oci.image.layer.v1.tar", "none"],
      ["application/vnd.oci.image.layer.v1.tar+gzip", "gzip"],
      ["application/vnd.oci.image.layer.v1.tar+zstd", "zstd"],
      ["application/vnd.oci.image.layer.v1.tar+xz", "xz"],
      ["application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", "gzip"],
      ["application/vnd.docker.image.rootfs.diff.tar.gzip", "gzip"],
      ["application/vnd.docker.image.rootfs.diff.tar.zstd", "zstd"],
      ["application/x-tar", "none"],
      ["application/octet-stream", undefined],
      ["text/markdown", undefined],
      ["application/vnd.acme.guitar", undefined],
      ["application/vnd.oci.image.layer.v1.tar+bzip2", undefined],
    ];
    for (const [type, compression] of cases)
      assert.equal(layerCompression(type), compression, type);
  });
});
