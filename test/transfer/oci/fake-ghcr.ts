/**
 * A stand-in for ghcr.io on 127.0.0.1: every `/v2/` request needs a Bearer token, which its token
 * endpoint hands out after a `WWW-Authenticate: Bearer realm,service,scope` challenge, to anyone
 * (a GET, anonymous or with Basic auth, or an OAuth2 refresh-token grant POSTed as a form);
 * blobs are 307-redirected to a "CDN" (a fault server reached as `localhost`, another origin), so
 * tests can check that no Authorization header follows the redirect and can cut blob bodies.
 */
import { createHash } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { startFaultServer, type FaultServer } from "../../helpers/fault-server.js";
import { sha256 } from "../../helpers/images.js";

const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
const DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json";
/** The service name the fake's challenges carry. */
export const FAKE_SERVICE = "fake-ghcr";

/** A token request the fake received. */
export interface TokenRequest {
  method: string;
  service: string | null;
  scope: string | null;
  authorization: string | undefined;
  /** A POST's `grant_type` and `refresh_token`. */
  grantType?: string | null;
  refreshToken?: string | null;
}

/** What {@link FakeGhcr.publish} stored. */
export interface FakeImage {
  /** The manifest's bytes, and their digest (`sha256:<hex>`). */
  manifest: Buffer;
  manifestDigest: string;
  /** Hex sha256 of the archive: the registry entry's sha256. */
  sha256: string;
  /** Path of the blob on the CDN. */
  blobPath: string;
}

/** See the module comment. */
export interface FakeGhcr {
  /** `127.0.0.1:<port>`. */
  host: string;
  /** Where blobs are served from (as `localhost`). */
  cdn: FaultServer;
  /** Requests to the registry itself, in order (method, path, authorization). */
  requests: { method: string; path: string; authorization: string | undefined }[];
  /** Token requests, in order. */
  tokens: TokenRequest[];
  /**
   * Stores `archive` as `repository:tag` with an OCI manifest whose single layer has `title`
   * (or a Docker v2 manifest without annotations when `docker` is set).
   */
  publish(
    repository: string,
    tag: string,
    archive: Buffer,
    options?: { title?: string; docker?: boolean },
  ): FakeImage;
  /** Stores raw manifest bytes under `repository` and `reference` (a tag or any digest). */
  setManifest(repository: string, reference: string, body: Buffer, mediaType?: string): void;
  /** Every token handed out so far stops working (as when tokens expire). */
  revokeTokens(): void;
  close(): Promise<void>;
}

/** Starts the fake (and its CDN); call `close()` when done. */
export async function startFakeGhcr(): Promise<FakeGhcr> {
  const cdn = await startFaultServer();
  const manifests = new Map<string, { body: Buffer; mediaType: string }>();
  const valid = new Set<string>();
  const requests: FakeGhcr["requests"] = [];
  const tokens: TokenRequest[] = [];
  let issued = 0;
  let base = "";

  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url ?? "/", base);
    if (url.pathname === "/token") {
      const method = req.method ?? "GET";
      let form = url.searchParams;
      if (method === "POST") {
        const chunks: Buffer[] = [];
        for await (const chunk of req) chunks.push(chunk as Buffer);
        form = new URLSearchParams(Buffer.concat(chunks).toString());
      }
      tokens.push({
        method,
        service: form.get("service"),
        scope: form.get("scope"),
        authorization: req.headers.authorization,
        ...(method === "POST"
          ? { grantType: form.get("grant_type"), refreshToken: form.get("refresh_token") }
          : {}),
      });
      const token = `token-${++issued}`;
      valid.add(token);
      res.writeHead(200, { "content-type": "application/json" });
      // OAuth2 answers say `access_token`, the Docker token protocol `token`.
      const key = method === "POST" ? "access_token" : "token";
      res.end(JSON.stringify({ [key]: token, expires_in: 300 }));
      return;
    }
    const authorization = req.headers.authorization;
    requests.push({ method: req.method ?? "GET", path: url.pathname, authorization });
    const match = /^\/v2\/(.+)\/(manifests|blobs)\/([^/]+)$/.exec(url.pathname);
    if (!authorization?.startsWith("Bearer ") || !valid.has(authorization.slice(7))) {
      const scope = `repository:${match?.[1] ?? ""}:pull`;
      res.writeHead(401, {
        "content-type": "application/json",
        "www-authenticate": `Bearer realm="${base}/token",service="${FAKE_SERVICE}",scope="${scope}"`,
      });
      res.end(
        JSON.stringify({ errors: [{ code: "UNAUTHORIZED", message: "authentication required" }] }),
      );
      return;
    }
    const [, repository, kind, reference] = match ?? [];
    if (kind === "blobs") {
      res.writeHead(307, { location: cdn.url(`/blobs/${reference}`, "localhost") }).end();
      return;
    }
    const manifest = manifests.get(`${repository}@${reference}`);
    if (kind !== "manifests" || manifest === undefined) {
      res.writeHead(404, { "content-type": "application/json" });
      res.end(
        JSON.stringify({ errors: [{ code: "MANIFEST_UNKNOWN", message: "manifest unknown" }] }),
      );
      return;
    }
    res.writeHead(200, { "content-type": manifest.mediaType }).end(manifest.body);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  base = `http://127.0.0.1:${port}`;

  const setManifest: FakeGhcr["setManifest"] = (repository, reference, body, mediaType) => {
    manifests.set(`${repository}@${reference}`, { body, mediaType: mediaType ?? OCI_MANIFEST });
  };

  return {
    host: `127.0.0.1:${port}`,
    cdn,
    requests,
    tokens,
    publish(repository, tag, archive, options = {}) {
      const digest = sha256(archive);
      const blobPath = `/blobs/sha256:${digest}`;
      cdn.setFile(blobPath, archive);
      const config = Buffer.from("{}");
      const layer = {
        mediaType: options.docker
          ? "application/vnd.docker.image.rootfs.diff.tar.gzip"
          : "application/vnd.oci.image.layer.v1.tar+gzip",
        digest: `sha256:${digest}`,
        size: archive.length,
        ...(options.docker || options.title === undefined
          ? {}
          : { annotations: { "org.opencontainers.image.title": options.title } }),
      };
      const mediaType = options.docker ? DOCKER_MANIFEST : OCI_MANIFEST;
      const body = Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType,
          config: {
            mediaType: "application/vnd.oci.empty.v1+json",
            digest: `sha256:${sha256(config)}`,
            size: config.length,
          },
          layers: [layer],
        }),
      );
      const manifestDigest = `sha256:${createHash("sha256").update(body).digest("hex")}`;
      setManifest(repository, tag, body, mediaType);
      setManifest(repository, manifestDigest, body, mediaType);
      return { manifest: body, manifestDigest, sha256: digest, blobPath };
    },
    setManifest,
    revokeTokens: () => valid.clear(),
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await cdn.close();
    },
  };
}
