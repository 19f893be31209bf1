import assert from "node:assert/strict";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { text } from "node:stream/consumers";
import { setTimeout as sleep } from "node:timers/promises";
import { AbortedError } from "../../src/errors.js";
import { httpRequest, redirectTarget, TransferError } from "../../src/transfer/http.js";
import { closedPort, startFaultServer, type FaultServer } from "../helpers/fault-server.js";
import { startForwardProxy } from "./forward-proxy.js";

describe("httpRequest", () => {
  let server: FaultServer;
  before(async () => {
    server = await startFaultServer();
    server.setFile("/file", "hello");
  });
  after(() => server.close());

  it("follows a chain of relative and absolute redirects and reports the final URL", async () => {
    server.setRedirect("/r1", "/r2", 301);
    server.setRedirect("/r2", server.url("/r3"), 307);
    server.setRedirect("/r3", "file", 308);
    const response = await httpRequest(server.url("/r1"));
    assert.equal(response.status, 200);
    assert.equal(response.url, server.url("/file"));
    assert.equal(await text(response.body), "hello");
  });

  it("drops Authorization on a redirect to another host, keeps it on the same origin", async () => {
    server.setRedirect("/same", "/file");
    server.setRedirect("/other", server.url("/file", "localhost"));
    const same = await httpRequest(server.url("/same"), { headers: { Authorization: "secret" } });
    await text(same.body);
    assert.equal(server.requests.at(-1)?.headers.authorization, "secret");

    const other = await httpRequest(server.url("/other"), {
      headers: { Authorization: "secret" },
    });
    assert.equal(await text(other.body), "hello");
    assert.equal(other.url, server.url("/file", "localhost"));
    const final = server.requests.at(-1);
    assert.equal(final?.headers.host, `localhost:${server.port}`);
    assert.equal(final?.headers.authorization, undefined);
    assert.equal(server.requestsFor("/other").at(-1)?.headers.authorization, "secret");
  });

  it("turns a 303 answer to a POST into a GET without body", async () => {
    server.setRedirect("/form", "/file", 303);
    const response = await httpRequest(server.url("/form"), {
      method: "POST",
      body: "data",
      headers: { "content-type": "text/plain" },
    });
    await text(response.body);
    const final = server.requests.at(-1);
    assert.equal(final?.method, "GET");
    assert.equal(final?.headers["content-type"], undefined);
  });

  it("gives up after maxRedirects, naming the URL", async () => {
    server.setRedirect("/loop", "/loop");
    await assert.rejects(httpRequest(server.url("/loop"), { maxRedirects: 3 }), (err) => {
      assert.ok(err instanceof TransferError);
      assert.equal(err.retryable, false);
      assert.match(err.message, /\/loop: too many redirects \(more than 3\)/);
      return true;
    });
    assert.equal(server.requestsFor("/loop").length, 4);
  });

  it("returns error statuses as answers, with their headers", async () => {
    const response = await httpRequest(server.url("/missing"));
    assert.equal(response.status, 404);
    assert.equal(response.headers["content-type"], "text/plain");
    response.body.destroy();
  });

  it("joins repeated response headers with a comma", async () => {
    const plain = http.createServer((_req, res) => {
      res.setHeader("X-Many", ["a", "b"]);
      res.end();
    });
    await new Promise<void>((resolve) => plain.listen(0, "127.0.0.1", resolve));
    try {
      const { port } = plain.address() as AddressInfo;
      const response = await httpRequest(`http://127.0.0.1:${port}/`);
      await text(response.body);
      assert.equal(response.headers["x-many"], "a, b");
    } finally {
      plain.closeAllConnections();
      await new Promise((resolve) => plain.close(resolve));
    }
  });

  it("reports a refused connection as a retryable TransferError naming the URL", async () => {
    const url = `http://127.0.0.1:${await closedPort()}/x.tar.gz`;
    await assert.rejects(httpRequest(url), (err) => {
      assert.ok(err instanceof TransferError);
      assert.equal(err.retryable, true);
      assert.equal(err.unreachable, true, "nothing could be sent");
      assert.equal(err.message, `${url}: connection refused`);
      return true;
    });
  });

  it("abandons a server that sends no headers within the stall timeout", async () => {
    server.setFault("/file", { kind: "hang" });
    await assert.rejects(httpRequest(server.url("/file"), { stallTimeoutMs: 150 }), (err) => {
      assert.ok(err instanceof TransferError);
      assert.equal(err.retryable, true);
      assert.equal(err.message, `${server.url("/file")}: no response (stalled)`);
      return true;
    });
  });

  it("does not count the time a busy reader keeps the body paused as a stall", async () => {
    const body = Buffer.alloc(1 << 20, 7);
    server.setFile("/paused", body);
    const response = await httpRequest(server.url("/paused"), { stallTimeoutMs: 100 });
    let received = 0;
    for await (const chunk of response.body) {
      received += (chunk as Buffer).length;
      await sleep(150); // busy elsewhere (disk, extraction) for longer than the stall timeout
    }
    assert.equal(received, body.length);
  });

  it("abandons a body that keeps arriving, but too slowly (low-speed rule)", async () => {
    server.setFile("/slow", "x".repeat(100));
    server.setFault("/slow", { kind: "drip", intervalMs: 100 });
    const response = await httpRequest(server.url("/slow"), {
      lowSpeed: { bytesPerSecond: 1000, seconds: 1 },
    });
    await assert.rejects(text(response.body), (err) => {
      assert.ok(err instanceof TransferError);
      assert.equal(err.retryable, true);
      assert.equal(err.tooSlow, true);
      assert.match(
        err.message,
        /\/slow: too slow: [\d.]+ B\/s over 1 s \(the limit is 1000 B\/s\)$/,
      );
      return true;
    });
  });

  it("rejects with AbortedError when the signal aborts", async () => {
    server.setFault("/file", { kind: "stall" });
    const controller = new AbortController();
    const pending = httpRequest(server.url("/file"), { signal: controller.signal });
    const response = await pending;
    controller.abort();
    await assert.rejects(text(response.body));
    const aborted = new AbortController();
    aborted.abort();
    await assert.rejects(
      httpRequest(server.url("/file"), { signal: aborted.signal }),
      AbortedError,
    );
  });

  it("refuses URLs that are not http(s)", async () => {
    await assert.rejects(httpRequest("ftp://127.0.0.1/x"), /ftp:\/\/127\.0\.0\.1\/x: not an http/);
  });
});

describe("redirectTarget", () => {
  it("resolves relative locations", () => {
    assert.equal(redirectTarget("https://a.example/x/y", "../z"), "https://a.example/z");
    assert.equal(redirectTarget("http://a.example/x", "https://b.example/"), "https://b.example/");
  });

  it("refuses https down to http, and non-http targets", () => {
    assert.throws(
      () => redirectTarget("https://a.example/x", "http://a.example/x"),
      (err) =>
        err instanceof TransferError &&
        !err.retryable &&
        /https:\/\/a\.example\/x: redirects from https down to plain http/.test(err.message),
    );
    assert.throws(() => redirectTarget("http://a.example/x", "file:///etc/passwd"), TransferError);
  });
});

describe("proxy from the environment", () => {
  let server: FaultServer;
  const saved = { ...process.env };
  before(async () => {
    server = await startFaultServer();
    server.setFile("/via", "proxied");
  });
  after(async () => {
    for (const name of ["HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy"]) {
      if (saved[name] === undefined) delete process.env[name];
      else process.env[name] = saved[name];
    }
    await server.close();
  });

  it("goes through HTTP_PROXY with the credentials of the proxy URL, unless NO_PROXY", async () => {
    const proxy = await startForwardProxy();
    try {
      delete process.env.http_proxy;
      delete process.env.no_proxy;
      delete process.env.NO_PROXY;
      process.env.HTTP_PROXY = proxy.url.replace("://", "://user:p%40ss@");
      const response = await httpRequest(server.url("/via"));
      assert.equal(await text(response.body), "proxied");
      assert.equal(proxy.seen.length, 1);
      assert.match(proxy.seen[0]?.line ?? "", new RegExp(`127\\.0\\.0\\.1:${server.port}`));
      const expected = `Basic ${Buffer.from("user:p@ss").toString("base64")}`;
      assert.equal(proxy.seen[0]?.proxyAuthorization, expected);

      process.env.NO_PROXY = `example.org, 127.0.0.1:${server.port}`;
      const direct = await httpRequest(server.url("/via"));
      assert.equal(await text(direct.body), "proxied");
      assert.equal(proxy.seen.length, 1, "NO_PROXY must bypass the proxy");
      assert.equal(server.requestsFor("/via").length, 2);
    } finally {
      await proxy.close();
    }
  });
});
