/**
 * How the CLI spends time on bad networks: a mirror nobody answers at costs one attempt, a server
 * dripping bytes is abandoned by the low-speed rule and a registry dripping bytes by the registry
 * deadline (never a run that lasts forever), and many requests at once never print a Node warning.
 */
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { after, afterEach, before, describe, it } from "node:test";
import { closedPort } from "../helpers/fault-server.js";
import { registryToml, sha256 } from "../helpers/images.js";
import { startWorld, type World } from "../helpers/world.js";

describe("the CLI on bad networks", () => {
  let w: World;
  before(async () => {
    w = await startWorld();
  });
  afterEach(() => {
    for (const request of w.server.requests) w.server.setFault(request.path); // no fault left
  });
  after(() => w.close());

  it("a mirror refusing connections costs one attempt; the original URL keeps its retries", async () => {
    const img = await w.publish("mirrored", "1.0", [{ name: "kernel", data: "k" }]);
    await w.cli(["sync"]);
    const refused = `http://127.0.0.1:${await closedPort()}/`;
    const mirror = `${w.server.url("/files/")}=${refused}`;
    const run = await w.cli(["--mirror", mirror, "pull", "mirrored"]);
    assert.equal(run.code, 0, run.stderr);
    assert.doesNotMatch(run.stderr, /retry/, "no retry of the refusing mirror");
    assert.match(run.stderr, /connection refused; trying the next URL/);
    assert.equal(w.server.requestsFor(img.path).length, 1);

    const everywhere = `${w.server.url("/files/")}=${refused}`;
    w.server.setFault(img.path, { kind: "status", status: 503, times: 100 });
    const failed = await w.cli(["--mirror", everywhere, "pull", "mirrored:1.0", "-o", w.root]);
    assert.equal(failed.code, 1);
    const retries = failed.stderr.split("\n").filter((l) => /retry \d\/5/.test(l));
    assert.equal(retries.length, 5, failed.stderr);
    assert.ok(
      retries.every((line) => line.includes(img.path)),
      "only the original is retried",
    );
  });

  it("a server dripping a valid archive at 1 byte/s is abandoned and resumed, then given up", async () => {
    const img = await w.publish("drip", "1.0", [{ name: "kernel", data: "k".repeat(10_000) }]);
    await w.cli(["sync"]);
    w.server.setFault(img.path, { kind: "drip", intervalMs: 1000, times: 100 });
    const args = ["pull", "drip", "--speed-limit", "100", "--speed-time", "1"];
    const run = await w.cli(args, { timeoutMs: 45_000 });
    assert.equal(run.code, 1, run.stderr);
    assert.match(run.stderr, /too slow: .* over 1 s \(the limit is 100 B\/s\)/);
    assert.match(run.stderr, /^error: drip: cannot download .*too slow.*gave up after 5 retries/m);
    const requests = w.server.requestsFor(img.path);
    assert.equal(requests.length, 6);
    assert.ok(
      requests.slice(1).every((r) => /^bytes=[1-9]\d*-$/.test(String(r.headers.range))),
      "each attempt resumes where the last one stopped",
    );
  });

  it("sync gives up on a registry dripping a byte every 2 s, with a clear error", async () => {
    await w.cli(["sync"]);
    const kept = await readFile(join(w.store, "images.toml"), "utf8");
    w.server.setFault("/registry.toml", { kind: "drip", intervalMs: 2000, times: 100 });
    const run = await w.cli(["sync"], {
      env: {
        AXVISOR_IMAGE_REGISTRY_TIMEOUT: "3",
        AXVISOR_REGISTRY_FALLBACK_URL: w.server.url("/no-fallback.toml"),
      },
      timeoutMs: 45_000,
    });
    assert.equal(run.code, 1, run.stderr);
    assert.match(
      run.stderr,
      /^error: sync failed: .*\/registry\.toml: no complete answer within 3 s; fallback: .*no-fallback\.toml: HTTP 404 Not Found$/m,
    );
    assert.equal(await readFile(join(w.store, "images.toml"), "utf8"), kept);
  });

  it("pull -j 10 of twelve images prints no warning", async () => {
    const names = Array.from({ length: 12 }, (_, i) => `many${i}`);
    for (const name of names) await w.publish(name, "1.0", [{ name: "kernel", data: name }]);
    await w.cli(["sync"]);
    const pulled = await w.cli(["pull", "-j", "10", ...names]);
    assert.equal(pulled.code, 0, pulled.stderr);
    assert.doesNotMatch(pulled.stderr, /MaxListeners|Warning/);
  });

  it("registry check --online of twelve URLs prints no warning", async () => {
    const names = Array.from({ length: 12 }, (_, i) => `many${i}`);
    const entries = names.map((name) => ({
      name,
      url: w.server.url(`/files/${name}-1.0.tar.gz`),
      sha256: sha256(name),
    }));
    w.server.setFile("/online.toml", registryToml(entries));
    const checked = await w.cli(["registry", "check", "--online", w.server.url("/online.toml")]);
    assert.equal(checked.code, 0, checked.stdout + checked.stderr);
    assert.doesNotMatch(checked.stderr, /MaxListeners|Warning/);
  });
});
