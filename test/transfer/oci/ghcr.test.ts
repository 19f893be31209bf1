import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readFile, readdir } from "node:fs/promises";
import { join } from "node:path";
import { after, before, beforeEach, describe, it } from "node:test";
import type { Config } from "../../../src/config/config.js";
import { AxError, ChecksumError } from "../../../src/errors.js";
import { pull, type PullOptions } from "../../../src/ops/pull.js";
import type { ImageEntry } from "../../../src/registry/types.js";
import { OCI_MANIFEST } from "../../../src/transfer/oci/manifest.js";
import { closedPort } from "../../helpers/fault-server.js";
import { makeTar, makeTarGz, sha256, tempDir } from "../../helpers/images.js";
import { FAKE_SERVICE, startFakeGhcr, type FakeGhcr } from "./fake-ghcr.js";

/** Incompressible, so that the archive is big enough to be cut in the middle. */
const KERNEL = randomBytes(300_000);

describe("pull from an OCI registry that works like ghcr.io", () => {
  let fake: FakeGhcr;
  let root: { path: string; cleanup: () => Promise<void> };
  let store: string;
  let stores = 0;
  const saved = { ...process.env };

  before(async () => {
    fake = await startFakeGhcr();
    root = await tempDir("axi-oci-ghcr-");
    process.env.DOCKER_CONFIG = join(root.path, "no-docker-config"); // anonymous
    process.env.AXVISOR_IMAGE_RETRY_BASE_MS = "5";
  });
  after(async () => {
    process.env = saved;
    await fake.close();
    await root.cleanup();
  });
  beforeEach(() => {
    store = join(root.path, `store-${++stores}`);
  });

  function config(overrides: Partial<Config> = {}): Config {
    return {
      localStorage: store,
      registry: join(root.path, "unused.toml"),
      fallbackRegistry: join(root.path, "unused.toml"),
      autoSync: false,
      autoSyncThreshold: 0,
      mirrors: [],
      insecureRegistries: [],
      ...overrides,
    };
  }

  function entry(name: string, url: string, digest: string): ImageEntry {
    return { name, version: "1.0", description: "test", arch: "aarch64", sha256: digest, url };
  }

  function pullEntry(image: ImageEntry, options: PullOptions & { config?: Config } = {}) {
    const { config: given, ...rest } = options;
    return pull(given ?? config(), `${image.name}:1.0`, { images: [image], ...rest });
  }

  it("gets an anonymous token and keeps Authorization from the redirected blob host", async () => {
    const archive = await makeTar([{ name: "qemu-aarch64", data: KERNEL }]);
    const img = fake.publish("acme/guests/linux", "1.0", archive, { title: "linux.tar" });
    const tokensBefore = fake.tokens.length;
    const res = await pullEntry(
      entry("linux", `oci://${fake.host}/acme/guests/linux:1.0`, img.sha256),
    );

    assert.equal(res.downloaded, true);
    assert.deepEqual(await readFile(join(res.path, "qemu-aarch64")), KERNEL);
    assert.equal(res.archive, join(store, "linux-1.0.tar"), "the layer title names the extension");
    assert.deepEqual(await readFile(res.archive), archive);
    const token = fake.tokens[tokensBefore];
    assert.deepEqual(token, {
      method: "GET",
      service: FAKE_SERVICE,
      scope: "repository:acme/guests/linux:pull",
      authorization: undefined,
    });
    const blobAsks = fake.cdn.requestsFor(img.blobPath);
    assert.ok(blobAsks.length > 0);
    for (const ask of blobAsks) assert.equal(ask.headers.authorization, undefined);
    assert.equal(blobAsks.at(-1)?.headers.host, `localhost:${fake.cdn.port}`);
    const blobRequests = fake.requests.filter((r) => r.path.includes("/blobs/"));
    assert.ok(blobRequests.every((r) => r.authorization?.startsWith("Bearer token-")));
  });

  it("resumes a cut blob, asking for a new token when the old one expired", async () => {
    // Big enough that the cut comes while bytes are flowing, not before the first is read.
    const big = randomBytes(3_000_000);
    const archive = await makeTar([{ name: "kernel", data: big }]);
    const img = fake.publish("acme/resumable", "1.0", archive, { title: "resumable.tar" });
    fake.cdn.setFault(img.blobPath, { kind: "cut", afterBytes: 1_000_000 });
    let revoked = false;
    const tokensBefore = fake.tokens.length;
    const sentBefore = fake.cdn.bytesSent(img.blobPath);
    const res = await pullEntry(
      entry("resumable", `oci://${fake.host}/acme/resumable:1.0`, img.sha256),
      {
        onProgress: (p) => {
          if (p.phase === "download" && !revoked) {
            revoked = true;
            fake.revokeTokens();
          }
        },
      },
    );

    assert.deepEqual(await readFile(join(res.path, "kernel")), big);
    const [first, second] = fake.cdn.requestsFor(img.blobPath);
    assert.equal(first?.headers.range, undefined);
    const from = Number(/^bytes=(\d+)-$/.exec(second?.headers.range ?? "")?.[1]);
    assert.ok(from > 0 && from <= 1_000_000, `resumed from byte ${from}`);
    assert.ok(second?.headers["if-range"], "the resume is guarded by If-Range");
    assert.equal(second?.headers.authorization, undefined);
    assert.ok(fake.cdn.bytesSent(img.blobPath) - sentBefore < archive.length * 1.05);
    const blobRequests = fake.requests.filter(
      (r) => r.path === `/v2/acme/resumable/blobs/sha256:${img.sha256}`,
    );
    const used = blobRequests.map((r) => r.authorization);
    assert.equal(fake.tokens.length, tokensBefore + 2, "one token to start, one after the expiry");
    assert.equal(used.at(-1), `Bearer token-${fake.tokens.length}`);
    assert.equal(used.at(-2), used.at(-3), "the expired token was refused once");
  });

  it("fails with a ChecksumError naming the image when the layer is not the entry's sha256", async () => {
    const archive = await makeTarGz([{ name: "kernel", data: "x" }]);
    const img = fake.publish("acme/wrong", "1.0", archive, { title: "wrong.tar.gz" });
    const wrong = sha256("another archive");
    await assert.rejects(
      pullEntry(entry("wrong", `oci://${fake.host}/acme/wrong:1.0`, wrong)),
      (err) => {
        assert.ok(err instanceof ChecksumError);
        assert.match(err.message, /image wrong:1\.0/);
        assert.match(err.message, new RegExp(img.sha256));
        return true;
      },
    );
    assert.equal(fake.cdn.requestsFor(img.blobPath).length, 0, "nothing was downloaded");
    assert.deepEqual(
      await readdir(store).then((names) => names.filter((n) => n.startsWith("wrong"))),
      [],
    );
  });

  it("pulls a digest-pinned reference, and refuses a manifest that does not match its digest", async () => {
    const archive = await makeTarGz([{ name: "kernel", data: "pinned" }]);
    const img = fake.publish("acme/pinned", "1.0", archive, { title: "pinned.tar.gz" });
    const pinned = `oci://${fake.host}/acme/pinned@${img.manifestDigest}`;
    const res = await pullEntry(entry("pinned", pinned, img.sha256));
    assert.equal(await readFile(join(res.path, "kernel"), "utf8"), "pinned");
    assert.ok(
      fake.requests.some((r) => r.path === `/v2/acme/pinned/manifests/${img.manifestDigest}`),
    );

    const liar = `sha256:${sha256("not this manifest")}`;
    const other = await makeTarGz([{ name: "kernel", data: "other" }]);
    const swapped = fake.publish("acme/pinned", "2.0", other, { title: "pinned.tar.gz" });
    fake.setManifest("acme/pinned", liar, swapped.manifest);
    await assert.rejects(
      pullEntry(entry("liar", `oci://${fake.host}/acme/pinned@${liar}`, swapped.sha256)),
      (err) => {
        assert.ok(err instanceof AxError);
        assert.match(err.message, /manifest whose digest is sha256:/);
        return true;
      },
    );
  });

  it("reads Docker v2 manifests; without a title the archive keeps the default name", async () => {
    const archive = await makeTarGz([{ name: "kernel", data: "docker" }]);
    const img = fake.publish("acme/docker", "1.0", archive, { docker: true });
    const res = await pullEntry(entry("docker", `oci://${fake.host}/acme/docker:1.0`, img.sha256));
    assert.equal(await readFile(join(res.path, "kernel"), "utf8"), "docker");
    assert.equal(res.archive, join(store, "docker-1.0.tar.gz"));
  });

  it("refuses image indexes that are malformed, nest, or lie about a child's digest", async () => {
    const archive = await makeTarGz([{ name: "kernel", data: "indexed" }]);
    const img = fake.publish("acme/indexed", "1.0", archive, { title: "indexed.tar.gz" });
    const INDEX = "application/vnd.oci.image.index.v1+json";
    const digestOf = (body: Buffer) => `sha256:${sha256(body)}`;
    const arm64 = { architecture: "arm64", os: "linux" };
    const child = (digest: string, mediaType = OCI_MANIFEST) => ({
      mediaType,
      digest,
      size: 1,
      platform: arm64,
    });
    const index = (tag: string, ...children: object[]) => {
      const body = Buffer.from(
        JSON.stringify({ schemaVersion: 2, mediaType: INDEX, manifests: children }),
      );
      fake.setManifest("acme/indexed", tag, body, INDEX);
      fake.setManifest("acme/indexed", digestOf(body), body, INDEX);
      return digestOf(body);
    };
    const refused = async (tag: string, pattern: RegExp) =>
      assert.rejects(
        pullEntry(entry(tag, `oci://${fake.host}/acme/indexed:${tag}`, img.sha256)),
        (err) => {
          assert.ok(err instanceof AxError, String(err));
          assert.match(err.message, pattern);
          return true;
        },
      );

    index("good", child(img.manifestDigest));
    const res = await pullEntry(entry("good", `oci://${fake.host}/acme/indexed:good`, img.sha256));
    assert.equal(await readFile(join(res.path, "kernel"), "utf8"), "indexed");

    index("traversal", child("sha256:../../../../etc/passwd"));
    await refused("traversal", /is a malformed image index/);
    const inner = index("inner", child(img.manifestDigest));
    index("nested", child(inner));
    await refused("nested", /the image index's manifest for linux\/arm64 is an image index itself/);
    index("typed", child(img.manifestDigest, "application/vnd.oci.image.config.v1+json"));
    await refused("typed", /manifest for linux\/arm64 is not an image manifest \(media type/);
    const liar = `sha256:${sha256("not this manifest")}`;
    fake.setManifest("acme/indexed", liar, img.manifest);
    index("liar", child(liar));
    await refused(
      "liar",
      new RegExp(`manifest whose digest is ${img.manifestDigest}, not ${liar}`),
    );
    assert.ok(
      !fake.requests.some((r) => r.path.includes("..")),
      "no request went out for a malformed digest",
    );
  });

  it("tries mirrors of oci:// URLs first, and falls back past a mirror without the image", async () => {
    const archive = await makeTarGz([{ name: "kernel", data: "mirrored" }]);
    const img = fake.publish("acme/mirrored", "1.0", archive, { title: "mirrored.tar.gz" });
    const original = `oci://${fake.host}/acme/mirrored:1.0`;
    const mirror = {
      prefix: `oci://${fake.host}/acme/`,
      replace: `oci://${fake.host}/cache/acme/`,
    };
    const lines: string[] = [];
    const logger = { info: (m: string) => lines.push(m), warn: (m: string) => lines.push(m) };
    const fallback = await pullEntry(entry("mirrored", original, img.sha256), {
      config: config({ mirrors: [mirror] }),
      logger,
    });
    assert.equal(fallback.servedBy, original);
    assert.ok(
      lines.some((l) => /cache\/acme\/mirrored.*MANIFEST_UNKNOWN.*trying the next URL/.test(l)),
      lines.join("\n"),
    );

    store = join(root.path, `store-${++stores}`);
    fake.publish("cache/acme/mirrored", "1.0", archive, { title: "mirrored.tar.gz" });
    const unreachable = `oci://127.0.0.1:${await closedPort()}/acme/mirrored:1.0`;
    const nearby = {
      prefix: unreachable.replace("acme/mirrored:1.0", ""),
      replace: `oci://${fake.host}/cache/`,
    };
    const mirrored = await pullEntry(entry("mirrored", unreachable, img.sha256), {
      config: config({ mirrors: [nearby] }),
    });
    assert.equal(mirrored.servedBy, `oci://${fake.host}/cache/acme/mirrored:1.0`);
    assert.equal(await readFile(join(mirrored.path, "kernel"), "utf8"), "mirrored");
  });
});
