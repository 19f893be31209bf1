import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { text } from "node:stream/consumers";
import { AbortedError } from "../../src/errors.js";
import type { Logger } from "../../src/log.js";
import { TransferError } from "../../src/transfer/http.js";
import {
  MAX_RETRY_AFTER_MS,
  requestWithRetry,
  retryAfterMs,
  RetryBudget,
} from "../../src/transfer/retry.js";
import { closedPort, startFaultServer, type FaultServer } from "../helpers/fault-server.js";

/** A logger that keeps its lines. */
function recordingLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  return { lines, info: (m) => lines.push(m), warn: (m) => lines.push(`warning: ${m}`) };
}

describe("requestWithRetry", () => {
  let server: FaultServer;
  before(async () => {
    server = await startFaultServer();
    server.setFile("/file", "content");
  });
  after(() => server.close());

  it("retries 500s, then returns the success, logging each retry with URL and reason", async () => {
    server.setFault("/file", { kind: "status", status: 500, times: 2 });
    const logger = recordingLogger();
    const before = server.requestsFor("/file").length;
    const response = await requestWithRetry(server.url("/file"), { retryBaseMs: 1, logger });
    assert.equal(response.status, 200);
    assert.equal(await text(response.body), "content");
    assert.equal(server.requestsFor("/file").length - before, 3);
    assert.equal(logger.lines.length, 2);
    assert.match(logger.lines[0] ?? "", /^retry 1\/5 in .*\/file: HTTP 500 Internal Server Error$/);
  });

  it("honours Retry-After on 429", async () => {
    server.setFault("/file", { kind: "status", status: 429, headers: { "retry-after": "1" } });
    const logger = recordingLogger();
    const response = await requestWithRetry(server.url("/file"), { retryBaseMs: 0, logger });
    assert.equal(response.status, 200);
    response.body.destroy();
    assert.match(logger.lines[0] ?? "", /^retry 1\/5 in 1\.0 s: .*HTTP 429 Too Many Requests$/);
  });

  it("returns other 4xx at once", async () => {
    const before = server.requests.length;
    const response = await requestWithRetry(server.url("/missing"), { retryBaseMs: 1 });
    assert.equal(response.status, 404);
    response.body.destroy();
    assert.equal(server.requests.length - before, 1);
  });

  it("returns the last retryable answer once the retries are spent", async () => {
    server.setFault("/file", { kind: "status", status: 503, times: Infinity });
    const before = server.requestsFor("/file").length;
    const response = await requestWithRetry(server.url("/file"), { retries: 2, retryBaseMs: 1 });
    assert.equal(response.status, 503);
    response.body.destroy();
    assert.equal(server.requestsFor("/file").length - before, 3);
    server.setFault("/file");
  });

  it("gives up on connection failures after the retries, naming the URL", async () => {
    const url = `http://127.0.0.1:${await closedPort()}/file`;
    const logger = recordingLogger();
    await assert.rejects(
      requestWithRetry(url, { retries: 2, retryBaseMs: 1, logger }),
      (err) =>
        err instanceof TransferError &&
        err.message === `${url}: connection refused (gave up after 2 retries)`,
    );
    assert.equal(logger.lines.length, 2);
  });

  it("takes its default backoff base from AXVISOR_IMAGE_RETRY_BASE_MS", async () => {
    server.setFault("/file", { kind: "status", status: 502 });
    process.env.AXVISOR_IMAGE_RETRY_BASE_MS = "0";
    try {
      const logger = recordingLogger();
      const response = await requestWithRetry(server.url("/file"), { logger });
      response.body.destroy();
      assert.match(logger.lines[0] ?? "", /^retry 1\/5 in 0\.0 s/);
    } finally {
      delete process.env.AXVISOR_IMAGE_RETRY_BASE_MS;
    }
  });

  it("stops a backoff sleep when the signal aborts", async () => {
    server.setFault("/file", { kind: "status", status: 500 });
    const controller = new AbortController();
    const logger: Logger = { info: () => controller.abort(), warn: () => {} };
    await assert.rejects(
      requestWithRetry(server.url("/file"), {
        retryBaseMs: 60_000,
        logger,
        signal: controller.signal,
      }),
      AbortedError,
    );
  });
});

describe("RetryBudget", () => {
  it("gives the budget back on progress", async () => {
    const budget = new RetryBudget({ retries: 1, retryBaseMs: 0 });
    assert.equal(await budget.retry("first"), true);
    assert.equal(budget.exhausted, true);
    assert.equal(await budget.retry("second"), false);
    budget.progressed();
    assert.equal(await budget.retry("third"), true);
  });
});

describe("retryAfterMs", () => {
  const now = Date.UTC(2026, 0, 1, 12, 0, 0);
  it("reads seconds and HTTP dates, caps them, and ignores garbage", () => {
    assert.equal(retryAfterMs("3", now), 3000);
    assert.equal(retryAfterMs(new Date(now + 5000).toUTCString(), now), 5000);
    assert.equal(retryAfterMs(new Date(now - 5000).toUTCString(), now), 0);
    assert.equal(retryAfterMs("86400", now), MAX_RETRY_AFTER_MS);
    assert.equal(retryAfterMs("soon", now), undefined);
    assert.equal(retryAfterMs(undefined, now), undefined);
  });
});
