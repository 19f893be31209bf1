import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, afterEach, before, beforeEach, describe, it } from "node:test";
import { pathToFileURL } from "node:url";
import { AbortedError, AxError, ChecksumError } from "../../src/errors.js";
import type { Logger } from "../../src/log.js";
import { partMetaPath } from "../../src/store/layout.js";
import { download, type DownloadOptions, type DownloadSink } from "../../src/transfer/download.js";
import { openSources } from "../../src/transfer/sources.js";
import { startFaultServer, type FaultServer } from "../helpers/fault-server.js";

const SIZE = 1 << 20;

const sha256 = (bytes: Buffer) => createHash("sha256").update(bytes).digest("hex");

/** A real sink: hashes and keeps every byte, and counts resets. */
class CollectingSink implements DownloadSink {
  chunks: Buffer[] = [];
  resets = 0;
  /** Called before each write (e.g. to check what is on disk at that moment). */
  onWrite: (() => void) | undefined;

  async reset(): Promise<void> {
    this.resets++;
    this.chunks = [];
  }

  async write(chunk: Buffer): Promise<void> {
    this.onWrite?.();
    this.chunks.push(Buffer.from(chunk));
  }

  get bytes(): Buffer {
    return Buffer.concat(this.chunks);
  }

  get digest(): string {
    return sha256(this.bytes);
  }
}

function recordingLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  return { lines, info: (m) => lines.push(m), warn: (m) => lines.push(`warning: ${m}`) };
}

describe("download", () => {
  let server: FaultServer;
  let dir: string;
  let partPath: string;
  const content = randomBytes(SIZE);
  const other = randomBytes(SIZE / 2);

  before(async () => {
    server = await startFaultServer();
  });
  after(() => server.close());
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "axvisor-download-"));
    partPath = join(dir, "image.tar.gz.part");
    server.setFile("/img", content);
  });
  afterEach(async () => {
    server.setFault("/img");
    await rm(dir, { recursive: true, force: true });
  });

  /** Downloads `/img` (or `urls`, from the sources they name) into `partPath` with fast retries. */
  async function run(
    sink: DownloadSink,
    {
      urls = [server.url("/img")],
      ...options
    }: Partial<DownloadOptions> & { urls?: string[] } = {},
  ) {
    const sources = await openSources(urls, {});
    const part = { path: partPath, meta: partMetaPath(partPath) };
    return download({ sources, part, sink, retryBaseMs: 1, ...options });
  }

  it("downloads into the .part and the sink, with the validator written first", async () => {
    const sink = new CollectingSink();
    sink.onWrite = () => assert.ok(existsSync(partMetaPath(partPath)), "meta before bytes");
    const progress: number[] = [];
    const result = await run(sink, { onProgress: (p) => progress.push(p.received) });
    assert.equal(sink.digest, sha256(content));
    assert.deepEqual(await readFile(partPath), content);
    assert.deepEqual(result, { url: server.url("/img"), size: SIZE, transferred: SIZE });
    assert.equal(progress.at(-1), SIZE);
    const meta = JSON.parse(await readFile(partMetaPath(partPath), "utf8"));
    assert.equal(meta.url, server.url("/img"));
    assert.match(meta.validator, /^"/);
    assert.equal(meta.size, SIZE);
  });

  it("lends the sink one reused buffer, overwritten only once each write resolved", async () => {
    const big = randomBytes(3.5 * SIZE);
    server.setFile("/big", big);
    const sink = new CollectingSink();
    const buffers = new Set<ArrayBufferLike>();
    let writes = 0;
    const controller = new AbortController();
    /** Keeps each chunk a while (the network delivers more meanwhile), then copies it. */
    const slow: DownloadSink = {
      reset: () => sink.reset(),
      write: async (chunk) => {
        buffers.add(chunk.buffer);
        await new Promise((resolve) => setTimeout(resolve, 20));
        await sink.write(chunk);
        if (++writes === 2) controller.abort(); // the next run replays the .part, then resumes
      },
    };
    const urls = [server.url("/big")];
    await assert.rejects(run(slow, { urls, signal: controller.signal }), AbortedError);
    const kept = (await stat(partPath)).size;
    assert.ok(kept >= 2 * SIZE && kept < big.length, `${kept} bytes kept`);
    await run(slow, { urls });
    assert.equal(sink.digest, sha256(big));
    assert.ok(big.equals(await readFile(partPath)));
    assert.equal(buffers.size, 2, "one buffer per download, however many MiB");
  });

  it("resumes after mid-body cuts, transferring each byte about once", async () => {
    server.setFault("/img", { kind: "cut", afterBytes: 300_000, times: 2 });
    const sent = server.bytesSent("/img");
    const sink = new CollectingSink();
    const result = await run(sink);
    assert.equal(sink.digest, sha256(content));
    assert.equal(sink.resets, 0);
    assert.equal(result.transferred, SIZE);
    assert.ok(server.bytesSent("/img") - sent <= SIZE * 1.05, "about 1x on the wire");
    const [first, second, third] = server.requestsFor("/img").slice(-3);
    assert.equal(first?.headers.range, undefined);
    // Each resume starts where the .part ended (at most where the server cut).
    const [one = 0, two = 0] = [second, third].map((r) =>
      Number(/^bytes=(\d+)-$/.exec(r?.headers.range ?? "")?.[1]),
    );
    assert.ok(one > 0 && one <= 300_000, `first resume at ${one}`);
    assert.ok(two > one && two <= one + 300_000, `second resume at ${two}`);
    assert.ok(second?.headers["if-range"]);
  });

  it("retries 500s and 429s before the first byte", async () => {
    server.setFault(
      "/img",
      { kind: "status", status: 500, times: 2 },
      { kind: "status", status: 429, headers: { "retry-after": "0" } },
    );
    const logger = recordingLogger();
    const sink = new CollectingSink();
    await run(sink, { logger });
    assert.equal(sink.digest, sha256(content));
    assert.equal(logger.lines.length, 3);
    assert.match(logger.lines[2] ?? "", /\/img: HTTP 429 Too Many Requests/);
  });

  it("abandons a stalled body and resumes it", async () => {
    server.setFault("/img", { kind: "stall", afterBytes: 200_000 });
    const sink = new CollectingSink();
    const result = await run(sink, { stallTimeoutMs: 100 });
    assert.equal(sink.digest, sha256(content));
    assert.equal(result.transferred, SIZE);
    assert.match(server.requestsFor("/img").at(-1)?.headers.range ?? "", /^bytes=[1-9]\d*-$/);
  });

  it("restarts cleanly when the server ignores Range", async () => {
    server.setFile("/img", content, { ignoreRange: true });
    server.setFault("/img", { kind: "cut", afterBytes: 300_000 });
    const sink = new CollectingSink();
    const result = await run(sink);
    assert.equal(sink.digest, sha256(content));
    assert.equal(sink.resets, 1);
    assert.deepEqual(await readFile(partPath), content);
    assert.ok(result.transferred > SIZE && result.transferred <= SIZE + 300_000);
  });

  it("restarts with the new content when the file changed between attempts", async () => {
    server.setFault("/img", { kind: "cut", afterBytes: 300_000, thenReplaceWith: other });
    const sink = new CollectingSink();
    const result = await run(sink);
    assert.equal(sink.digest, sha256(other));
    assert.deepEqual(await readFile(partPath), other);
    assert.equal(result.size, other.length);
    assert.ok(server.requestsFor("/img").at(-1)?.headers["if-range"], "asked with If-Range");
  });

  it("resumes a .part left by an earlier run with Range and If-Range", async () => {
    server.setFault("/img", { kind: "cut", afterBytes: 400_000 });
    await assert.rejects(run(new CollectingSink(), { retries: 0 }), AxError);
    const kept = (await stat(partPath)).size;
    assert.ok(kept > 0 && kept <= 400_000);

    const sink = new CollectingSink();
    const result = await run(sink);
    assert.equal(sink.digest, sha256(content));
    assert.equal(result.transferred, SIZE - kept);
    const last = server.requestsFor("/img").at(-1);
    assert.equal(last?.headers.range, `bytes=${kept}-`);
    const meta = JSON.parse(await readFile(partMetaPath(partPath), "utf8"));
    assert.equal(last?.headers["if-range"], meta.validator);
  });

  it("does not resume a .part without its metadata", async () => {
    await writeFile(partPath, content.subarray(0, 1000));
    const sink = new CollectingSink();
    const result = await run(sink);
    assert.equal(server.requestsFor("/img").at(-1)?.headers.range, undefined);
    assert.equal(result.transferred, SIZE);
    assert.deepEqual(await readFile(partPath), content);
  });

  it("takes a 416 for the whole size as an already complete .part", async () => {
    await run(new CollectingSink());
    const sink = new CollectingSink();
    const result = await run(sink);
    assert.equal(sink.digest, sha256(content));
    assert.equal(result.transferred, 0);
    assert.equal(result.size, SIZE);
  });

  it("restarts on a 416 for another size", async () => {
    server.setFile("/img", content, { etag: '"fixed"' });
    server.setFault("/img", { kind: "cut", afterBytes: 800_000 });
    await assert.rejects(run(new CollectingSink(), { retries: 0 }), AxError);
    const kept = (await stat(partPath)).size;
    assert.ok(kept > other.length, "the .part must outgrow the new file");
    server.setFile("/img", other, { etag: '"fixed"' }); // shorter, same validator: 416
    const sink = new CollectingSink();
    const result = await run(sink);
    assert.equal(sink.digest, sha256(other));
    assert.deepEqual(await readFile(partPath), other);
    assert.equal(result.size, other.length);
    const [ranged, full] = server.requestsFor("/img").slice(-2);
    assert.equal(ranged?.headers.range, `bytes=${kept}-`);
    assert.equal(full?.headers.range, undefined);
  });

  it("restarts after a cut when the server gives no validator", async () => {
    server.setFile("/img", content, { etag: false, lastModified: false });
    server.setFault("/img", { kind: "cut", afterBytes: 300_000 });
    const sink = new CollectingSink();
    await run(sink);
    assert.equal(sink.digest, sha256(content));
    assert.equal(sink.resets, 1);
    assert.equal(existsSync(partMetaPath(partPath)), false);
    assert.equal(server.requestsFor("/img").at(-1)?.headers.range, undefined);
  });

  it("gives up on a server that cuts at the same byte and cannot resume", async () => {
    server.setFile("/img", content, { ignoreRange: true });
    server.setFault("/img", { kind: "cut", afterBytes: 300_000, times: Infinity });
    const before = server.requestsFor("/img").length;
    await assert.rejects(run(new CollectingSink(), { retries: 2 }), /gave up after 2 retries/);
    assert.equal(server.requestsFor("/img").length - before, 3);
  });

  it("fails at once on a 404, naming the URL", async () => {
    const url = server.url("/nothing-here");
    const before = server.requests.length;
    await assert.rejects(run(new CollectingSink(), { urls: [url] }), (err) => {
      assert.ok(err instanceof AxError);
      assert.equal(err.message, `cannot download ${url}: HTTP 404 Not Found`);
      return true;
    });
    assert.equal(server.requests.length - before, 1);
  });

  it("tries the mirrors in order and falls back to the original", async () => {
    server.setFault("/broken", { kind: "status", status: 503, times: Infinity });
    const urls = [server.url("/absent"), server.url("/broken"), server.url("/img")];
    const logger = recordingLogger();
    const sink = new CollectingSink();
    const result = await run(sink, { urls, logger, retries: 1 });
    assert.equal(result.url, server.url("/img"));
    assert.equal(sink.digest, sha256(content));
    const paths = server.requests.slice(-4).map((r) => r.path);
    assert.deepEqual(paths, ["/absent", "/broken", "/broken", "/img"]);
    assert.ok(logger.lines.some((l) => l.includes("/absent: HTTP 404 Not Found")));
    assert.ok(!logger.lines.some((l) => l.startsWith("downloading from")));
    server.setFault("/broken");
  });

  it("says which mirror served", async () => {
    server.setFile("/mirror/img", content);
    const logger = recordingLogger();
    const before = server.requestsFor("/img").length;
    const urls = [server.url("/mirror/img"), server.url("/img")];
    const result = await run(new CollectingSink(), { urls, logger });
    assert.equal(result.url, urls[0]);
    assert.deepEqual(logger.lines, [`downloading from ${urls[0]}`]);
    assert.equal(server.requestsFor("/img").length, before);
  });

  it("names the original URL and the last reason when every candidate fails", async () => {
    const urls = [server.url("/absent"), server.url("/gone")];
    await assert.rejects(run(new CollectingSink(), { urls }), (err) => {
      assert.ok(err instanceof AxError);
      assert.equal(err.message, `cannot download ${urls[1]}: HTTP 404 Not Found`);
      assert.match(err.hint ?? "", /absent/);
      return true;
    });
  });

  it("copies file:// URLs, and falls back past a missing one", async () => {
    const local = join(dir, "local.tar.gz");
    await writeFile(local, other);
    const missing = pathToFileURL(join(dir, "missing.tar.gz")).href;
    const sink = new CollectingSink();
    const result = await run(sink, { urls: [missing, pathToFileURL(local).href] });
    assert.equal(sink.digest, sha256(other));
    assert.deepEqual(await readFile(partPath), other);
    assert.equal(result.size, other.length);
  });

  it("checks the sha256 as the bytes flow: a mismatch keeps nothing and names the source", async () => {
    const sink = new CollectingSink();
    const good = await run(sink, { integrity: { sha256: sha256(content), what: "image good" } });
    assert.equal(good.sha256, sha256(content));
    await rm(partPath);
    const wrong = "0".repeat(64);
    await assert.rejects(
      run(new CollectingSink(), { integrity: { sha256: wrong, what: "image bad" } }),
      (err) => {
        assert.ok(err instanceof ChecksumError);
        assert.equal(
          err.message,
          `checksum mismatch for image bad: expected ${wrong}, got ${sha256(content)} (from ${server.url("/img")})`,
        );
        return true;
      },
    );
    assert.equal(existsSync(partPath), false);
    assert.equal(existsSync(partMetaPath(partPath)), false);
  });

  it("stops with AbortedError and keeps the .part for later", async () => {
    server.setFault("/img", { kind: "stall", afterBytes: 100_000 });
    const controller = new AbortController();
    const sink = new CollectingSink();
    sink.onWrite = () => controller.abort();
    await assert.rejects(run(sink, { signal: controller.signal }), AbortedError);
    assert.ok((await stat(partPath)).size > 0);
  });
});
