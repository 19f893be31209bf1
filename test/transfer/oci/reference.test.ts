import assert from "node:assert/strict";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { AxError } from "../../../src/errors.js";
import { TransferError } from "../../../src/transfer/http.js";
import { parseChallenge } from "../../../src/transfer/oci/client.js";
import { dockerCredentials } from "../../../src/transfer/oci/credentials.js";
import { pickArchiveLayer, type ImageManifest } from "../../../src/transfer/oci/manifest.js";
import {
  formatOciReference,
  isOciUrl,
  parseOciReference,
  registryBaseUrl,
} from "../../../src/transfer/oci/reference.js";
import { layerMediaType } from "../../../src/transfer/oci/upload.js";
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
      },
      credsStore: "desktop",
    });
    const source = join(env.DOCKER_CONFIG!, "config.json");
    assert.deepEqual(await dockerCredentials("ghcr.io", env), {
      username: "octocat",
      password: "ghp_token:with:colons",
      source,
    });
    assert.deepEqual(await dockerCredentials("harbor.lan:8443", env), {
      username: "robot$ci",
      password: "pw",
      source,
    });
    assert.equal(await dockerCredentials("harbor.lan", env), undefined, "the port matters");
    assert.equal(await dockerCredentials("empty.example", env), undefined);
  });

  it("has none without a file, and names a file that is not JSON", async () => {
    assert.equal(
      await dockerCredentials("ghcr.io", { DOCKER_CONFIG: join(dir.path, "none") }),
      undefined,
    );
    const env = await withConfig("broken", "{ not json");
    await assert.rejects(
      dockerCredentials("ghcr.io", env),
      (err) =>
        err instanceof AxError && err.message.startsWith(join(env.DOCKER_CONFIG!, "config.json")),
    );
  });
});

describe("the archive layer of a manifest", () => {
  const layer = (title?: string, digest = DIGEST) => ({
    mediaType: "application/vnd.oci.image.layer.v1.tar",
    digest,
    size: 1,
    ...(title === undefined ? {} : { annotations: { "org.opencontainers.image.title": title } }),
  });
  const manifest = (...layers: ReturnType<typeof layer>[]): ImageManifest => ({
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    config: layer(),
    layers,
  });

  it("is the only layer, or the only one titled as an archive", () => {
    assert.equal(pickArchiveLayer(manifest(layer()), "ref").digest, DIGEST);
    const other = `sha256:${"cd".repeat(32)}`;
    const picked = pickArchiveLayer(
      manifest(layer("README.md"), layer("linux.TAR.XZ", other)),
      "ref",
    );
    assert.equal(picked.digest, other);
  });

  it("cannot be told among several archives, or none", () => {
    for (const m of [
      manifest(layer("a.tar.gz"), layer("b.tgz")),
      manifest(layer(), layer()),
      manifest(),
    ]) {
      assert.throws(
        () => pickArchiveLayer(m, "oci://h/a:1"),
        (err) =>
          err instanceof TransferError &&
          /oci:\/\/h\/a:1: cannot tell which layer/.test(err.message),
      );
    }
  });

  it("gets an OCI layer media type from the archive's name when published", () => {
    assert.equal(layerMediaType("linux.tar.gz"), "application/vnd.oci.image.layer.v1.tar+gzip");
    assert.equal(layerMediaType("linux.tgz"), "application/vnd.oci.image.layer.v1.tar+gzip");
    assert.equal(layerMediaType("linux.tar.zst"), "application/vnd.oci.image.layer.v1.tar+zstd");
    assert.equal(layerMediaType("linux.tar.xz"), "application/vnd.oci.image.layer.v1.tar+xz");
    assert.equal(layerMediaType("linux.tar"), "application/vnd.oci.image.layer.v1.tar");
  });
});
