import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { beforeEach, describe, it } from "node:test";
import { isRemote, resolveInclude, toLocation } from "../../src/registry/location.js";
import { readRegistrySource } from "../../src/registry/source.js";
import { useServedWorld } from "./support.js";

const identity = (text: string) => text;

describe("readRegistrySource", () => {
  const world = useServedWorld();
  beforeEach(() => {
    world.server.setFile("/r.toml", "# one\n");
  });

  it("says where each answer came from: network, not-modified, stale", async () => {
    const url = world.server.url("/r.toml");
    const options = { cacheDir: world.cacheDir, staleOnError: true, http: { retries: 0 } };
    const first = await readRegistrySource(url, identity, options);
    assert.deepEqual(first, { value: "# one\n", origin: "network" });
    const second = await readRegistrySource(url, identity, options);
    assert.deepEqual(second, { value: "# one\n", origin: "not-modified" });
    world.server.setFile("/r.toml", "# two\n");
    const third = await readRegistrySource(url, identity, options);
    assert.deepEqual(third, { value: "# two\n", origin: "network" });
    world.server.setStatus("/r.toml", 503);
    const fourth = await readRegistrySource(url, identity, options);
    assert.equal(fourth.origin, "stale");
    assert.equal(fourth.value, "# two\n");
    assert.equal(fourth.staleBecause?.message, `${url}: HTTP 503 Service Unavailable`);
    await assert.rejects(
      readRegistrySource(url, identity, { ...options, staleOnError: false }),
      /HTTP 503 Service Unavailable/,
    );
  });

  it("keeps one cache file per URL, named by the URL's sha256, with no temporary left", async () => {
    const url = world.server.url("/r.toml");
    await readRegistrySource(url, identity, { cacheDir: world.cacheDir });
    const name = `${createHash("sha256").update(url).digest("hex")}.toml`;
    assert.deepEqual(await readdir(world.cacheDir), [name]);
    const [meta, body] = (await readFile(join(world.cacheDir, name), "utf8")).split(/\n(.*)/s);
    assert.equal(JSON.parse(meta ?? "").url, url);
    assert.equal(body, "# one\n");
  });

  it("caches only bodies the caller accepts", async () => {
    const url = world.server.url("/r.toml");
    const refuse = () => {
      throw new Error("refused");
    };
    await assert.rejects(readRegistrySource(url, refuse, { cacheDir: world.cacheDir }), /refused/);
    assert.deepEqual(await readdir(world.cacheDir), []);
  });

  it("ignores a corrupt cache file and fails on a 304 it cannot use", async () => {
    const url = world.server.url("/r.toml");
    await readRegistrySource(url, identity, { cacheDir: world.cacheDir });
    const [name] = await readdir(world.cacheDir);
    await writeFile(join(world.cacheDir, name ?? ""), "not json\n# old\n");
    const fresh = await readRegistrySource(url, identity, { cacheDir: world.cacheDir });
    assert.deepEqual(fresh, { value: "# one\n", origin: "network" });
    world.server.setStatus("/r.toml", 304);
    await assert.rejects(
      readRegistrySource(url, identity),
      (err: Error) => err.message === `${url}: HTTP 304 Not Modified`,
    );
  });

  it("stops reading a chunked body past the limit", async () => {
    world.server.chunked = true;
    world.server.setFile("/r.toml", "#".repeat(2000));
    const url = world.server.url("/r.toml");
    await assert.rejects(
      readRegistrySource(url, identity, { maxBytes: 1000 }),
      (err: Error) => err.message === `${url}: registry file is larger than 1000 bytes`,
    );
    assert.equal((await readRegistrySource(url, identity, { maxBytes: 2000 })).value.length, 2000);
  });

  it("reads local files with origin file, dropping a byte-order mark", async () => {
    const path = join(world.cacheDir, "local.toml");
    await writeFile(path, "\ufeff# local\n");
    assert.deepEqual(await readRegistrySource(path, identity), {
      value: "# local\n",
      origin: "file",
    });
  });
});

describe("registry locations", () => {
  it("normalizes URLs and makes paths absolute", () => {
    assert.equal(toLocation("HTTPS://Example.com/a/../r.toml"), "https://example.com/r.toml");
    assert.equal(toLocation("file:///srv/reg/r.toml"), "/srv/reg/r.toml");
    assert.equal(toLocation("reg/r.toml"), join(process.cwd(), "reg/r.toml"));
    assert.ok(isRemote("http://x/r.toml") && !isRemote("/srv/r.toml"));
    assert.throws(() => toLocation("http://[x/r.toml"), /^RegistryError: invalid registry URL/);
  });

  it("resolves includes against the including file", () => {
    assert.equal(resolveInclude("https://x/reg/default.toml", "v1.toml"), "https://x/reg/v1.toml");
    assert.equal(resolveInclude("https://x/reg/default.toml", "/v1.toml"), "https://x/v1.toml");
    assert.equal(resolveInclude("https://x/reg/d.toml", "https://y/v1.toml"), "https://y/v1.toml");
    assert.equal(resolveInclude("/srv/reg/d.toml", "../v1.toml"), "/srv/v1.toml");
    assert.equal(resolveInclude("/srv/reg/d.toml", "https://y/v1.toml"), "https://y/v1.toml");
    assert.equal(resolveInclude("/srv/reg/d.toml", "file:///a/v1.toml"), "/a/v1.toml");
    assert.throws(
      () => resolveInclude("https://x/d.toml", "file:///etc/passwd"),
      /^RegistryError: https:\/\/x\/d\.toml: include "file:\/\/\/etc\/passwd" refused/,
    );
  });
});
