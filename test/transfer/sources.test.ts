/** What `download` gained for OCI: candidates that resolve late, carry headers and renew auth. */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { after, afterEach, before, beforeEach, describe, it } from "node:test";
import { AxError } from "../../src/errors.js";
import {
  download,
  type DownloadCandidate,
  type DownloadOptions,
  type DownloadSink,
  type HttpSource,
} from "../../src/transfer/download.js";
import { TransferError } from "../../src/transfer/http.js";
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

function candidate(name: string, resolve: () => Promise<HttpSource>): DownloadCandidate {
  return { name, resolve };
}

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

  function run(urls: DownloadOptions["urls"], sink = collector()) {
    const partPath = join(dir.path, `image-${++runs}.tar.gz.part`);
    return download({ urls, partPath, sink, logger, retryBaseMs: 1 }).then((r) => ({ ...r, sink }));
  }

  it("sends the candidate's headers and names it in the result and the log", async () => {
    const mirror = candidate("oci://mirror/a:1", async () => ({
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
    const source = candidate("oci://h/a:1", async () => ({
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
    const source = candidate("oci://mirror/a:1", async () => ({
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
    const unreachable = candidate("oci://gone/a:1", async () => {
      throw new TransferError("oci://gone/a:1", "manifest unknown", { retryable: false });
    });
    const result = await run([unreachable, server.url("/elsewhere")]);
    assert.equal(result.url, server.url("/elsewhere"));
    assert.ok(lines.includes("oci://gone/a:1: manifest unknown; trying the next URL"));

    const broken = candidate("oci://bad/a:1", async () => {
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
    const gone = candidate("oci://h/gone:1", async () => {
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
