/**
 * Sources behind one interface: the dispatch by scheme, and what an OCI source relies on from the
 * download: sources that resolve late, carry headers and renew their authorization.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { after, afterEach, before, beforeEach, describe, it } from "node:test";
import { AxError } from "../../src/errors.js";
import { partMetaPath } from "../../src/store/layout.js";
import { download, type DownloadSink } from "../../src/transfer/download.js";
import { TransferError } from "../../src/transfer/http.js";
import { httpSource, type HttpSourceOptions } from "../../src/transfer/http-source.js";
import { openSources, sourceKind, type Source } from "../../src/transfer/sources.js";
import { startFaultServer, type FaultServer } from "../helpers/fault-server.js";
import { sha256, tempDir } from "../helpers/images.js";

const CONTENT = randomBytes(200_000);

/** A sink that keeps every byte. */
function collector(): DownloadSink & { bytes(): Buffer } {
  let chunks: Buffer[] = [];
  return {
    reset: async () => void (chunks = []),
    write: async (chunk) => void chunks.push(Buffer.from(chunk)),
    bytes: () => Buffer.concat(chunks),
  };
}

/** A source named `name` that finds where its bytes are when the download first opens it. */
function lateSource(name: string, resolve: () => Promise<HttpSourceOptions & { url: string }>) {
  let resolved: Source | undefined;
  const source: Source = {
    name,
    async open(request) {
      if (resolved === undefined) {
        const { url, ...options } = await resolve();
        resolved = httpSource(url, options);
      }
      return resolved.open(request);
    },
  };
  return source;
}

describe("sources", () => {
  it("are dispatched once, by scheme: oci://, file: and http(s)", async () => {
    assert.equal(sourceKind("oci://ghcr.io/a/b:1"), "oci");
    assert.equal(sourceKind("OCI://ghcr.io/a/b:1"), "oci");
    assert.equal(sourceKind("file:///srv/a.tar.gz"), "file");
    assert.equal(sourceKind("https://example.org/a.tar.gz"), "http");
    const urls = ["oci://127.0.0.1:1/a/b:1", "file:///srv/a.tar.gz", "http://127.0.0.1:1/a"];
    const sources = await openSources(urls, {});
    assert.deepEqual(
      sources.map((s) => s.name),
      urls,
    );
  });
});

describe("download candidates", () => {
  let server: FaultServer;
  let dir: { path: string; cleanup: () => Promise<void> };
  let runs = 0;
  const lines: string[] = [];
  const logger = { info: (m: string) => lines.push(m), warn: (m: string) => lines.push(m) };

  before(async () => {
    server = await startFaultServer();
    server.setFile("/blob", CONTENT);
    server.setFile("/elsewhere", CONTENT);
  });
  after(() => server.close());
  beforeEach(async () => {
    dir = await tempDir("axi-oci-download-");
    lines.length = 0;
  });
  afterEach(async () => {
    server.setFault("/blob");
    await dir.cleanup();
  });

  async function run(candidates: (string | Source)[], sink = collector()) {
    const path = join(dir.path, `image-${++runs}.tar.gz.part`);
    const sources = await Promise.all(
      candidates.map(async (c) => (typeof c === "string" ? (await openSources([c], {}))[0]! : c)),
    );
    const part = { path, meta: partMetaPath(path) };
    return download({ sources, part, sink, logger, retryBaseMs: 1 }).then((r) => ({ ...r, sink }));
  }

  it("sends the candidate's headers and names it in the result and the log", async () => {
    const mirror = lateSource("oci://mirror/a:1", async () => ({
      url: server.url("/blob"),
      headers: { authorization: "Bearer first" },
    }));
    const result = await run([mirror, server.url("/elsewhere")]);
    assert.equal(result.url, "oci://mirror/a:1");
    assert.equal(sha256(result.sink.bytes()), sha256(CONTENT));
    assert.equal(server.requestsFor("/blob").at(-1)?.headers.authorization, "Bearer first");
    assert.deepEqual(lines, ["downloading from oci://mirror/a:1"]);
  });

  it("renews the authorization once on a 401 and goes on", async () => {
    const challenge = 'Bearer realm="http://127.0.0.1/token",service="test"';
    server.setFault("/blob", {
      kind: "status",
      status: 401,
      headers: { "www-authenticate": challenge },
    });
    const seen: (string | undefined)[] = [];
    const source = lateSource("oci://h/a:1", async () => ({
      url: server.url("/blob"),
      headers: { authorization: "Bearer expired" },
      reauthorize: async (value) => {
        seen.push(value);
        return { authorization: "Bearer renewed" };
      },
    }));
    const result = await run([source]);
    assert.equal(sha256(result.sink.bytes()), sha256(CONTENT));
    assert.deepEqual(seen, [challenge]);
    const [refused, served] = server.requestsFor("/blob").slice(-2);
    assert.equal(refused?.headers.authorization, "Bearer expired");
    assert.equal(served?.headers.authorization, "Bearer renewed");
  });

  it("gives up on a candidate refused twice in a row and tries the next", async () => {
    server.setFault("/blob", { kind: "status", status: 401, times: 2 });
    let renewals = 0;
    const source = lateSource("oci://mirror/a:1", async () => ({
      url: server.url("/blob"),
      reauthorize: async () => ({ authorization: `Bearer ${++renewals}` }),
    }));
    const result = await run([source, server.url("/elsewhere")]);
    assert.equal(result.url, server.url("/elsewhere"));
    assert.equal(renewals, 1);
    assert.ok(
      lines.some((l) => l.includes("HTTP 401 Unauthorized; trying the next URL")),
      lines.join("\n"),
    );
  });

  it("skips a candidate that cannot resolve, and stops on any other error", async () => {
    const unreachable = lateSource("oci://gone/a:1", async () => {
      throw new TransferError("oci://gone/a:1", "manifest unknown", { retryable: false });
    });
    const result = await run([unreachable, server.url("/elsewhere")]);
    assert.equal(result.url, server.url("/elsewhere"));
    assert.ok(lines.includes("oci://gone/a:1: manifest unknown; trying the next URL"));

    const broken = lateSource("oci://bad/a:1", async () => {
      throw new AxError("checksum mismatch for image a:1");
    });
    const before = server.requestsFor("/elsewhere").length;
    await assert.rejects(
      run([broken, server.url("/elsewhere")]),
      /checksum mismatch for image a:1/,
    );
    assert.equal(server.requestsFor("/elsewhere").length, before);
  });

  it("names the last candidate when all fail", async () => {
    const gone = lateSource("oci://h/gone:1", async () => {
      throw new TransferError("oci://h/gone:1", "HTTP 404 Not Found", { retryable: false });
    });
    await assert.rejects(run([server.url("/absent"), gone]), (err) => {
      assert.ok(err instanceof AxError);
      assert.equal(err.message, "cannot download oci://h/gone:1: HTTP 404 Not Found");
      assert.equal(err.hint, `tried ${server.url("/absent")}, oci://h/gone:1`);
      return true;
    });
  });
});
