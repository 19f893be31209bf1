import assert from "node:assert/strict";
import { readFile, readdir, writeFile, mkdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { after, before, beforeEach, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { AxError } from "../../src/errors.js";
import type { Logger } from "../../src/log.js";
import { prune } from "../../src/ops/prune.js";
import { openRegistry } from "../../src/ops/open-registry.js";
import { sync } from "../../src/ops/sync.js";
import { SYNC_LOCK } from "../../src/store/layout.js";
import { withLock } from "../../src/store/lock.js";
import { registryToml, sha256 } from "../helpers/images.js";
import { startWorld, type World } from "../helpers/world.js";

const FIXTURES = fileURLToPath(new URL("../fixtures/axvisor-guest-registry/", import.meta.url));

function recorder(): Logger & { lines: string[] } {
  const lines: string[] = [];
  return { lines, info: (m) => lines.push(m), warn: (m) => lines.push(`warning: ${m}`) };
}

const entry = (name: string, url = "https://example.invalid/x.tar.gz") => ({
  name,
  url,
  sha256: sha256(name),
});

describe("sync and auto-sync", () => {
  let w: World;
  before(async () => {
    w = await startWorld();
  });
  after(() => w.close());
  beforeEach(async () => {
    await rm(w.store, { recursive: true, force: true });
    w.server.setFile("/registry.toml", registryToml([entry("alpha")]));
    w.server.setFault("/registry.toml");
  });

  it("syncs when the store has no registry", async () => {
    const images = await openRegistry(w.config());
    assert.deepEqual(
      images.map((i) => i.name),
      ["alpha"],
    );
    assert.match(await readFile(join(w.store, "images.toml"), "utf8"), /name = "alpha"/);
  });

  it("with auto-sync off, a missing registry is an error naming the file", async () => {
    await assert.rejects(openRegistry(w.config({ autoSync: false })), (err: unknown) => {
      assert.ok(err instanceof AxError);
      assert.ok(err.message.includes(join(w.store, "images.toml")), err.message);
      return true;
    });
  });

  it("re-syncs a stale registry; a failed refresh keeps the registry you had", async () => {
    await sync(w.config());
    await writeFile(join(w.store, ".last_sync"), "1000");
    w.server.setFile("/registry.toml", registryToml([entry("alpha"), entry("beta")]));
    assert.deepEqual(
      (await openRegistry(w.config())).map((i) => i.name),
      ["alpha", "beta"],
    );

    await writeFile(join(w.store, ".last_sync"), "1000");
    const before = await readFile(join(w.store, "images.toml"), "utf8");
    w.server.setFault("/registry.toml", { kind: "status", status: 404, times: 100 });
    const log = recorder();
    const images = await openRegistry(w.config(), { logger: log });
    assert.deepEqual(
      images.map((i) => i.name),
      ["alpha", "beta"],
    );
    assert.equal(await readFile(join(w.store, "images.toml"), "utf8"), before);
    assert.ok(
      log.lines.some((l) => l.startsWith("warning: auto-sync failed")),
      log.lines.join("\n"),
    );
  });

  it("threshold 0 never re-syncs a present registry; a .last_sync in the future is stale", async () => {
    await sync(w.config());
    w.server.setFile("/registry.toml", registryToml([entry("alpha"), entry("gamma")]));
    await writeFile(join(w.store, ".last_sync"), "1000");
    const never = await openRegistry(w.config({ autoSyncThreshold: 0 }));
    assert.deepEqual(
      never.map((i) => i.name),
      ["alpha"],
    );
    await writeFile(
      join(w.store, ".last_sync"),
      String(Math.floor(Date.now() / 1000) + 86400 * 365),
    );
    const future = await openRegistry(w.config());
    assert.deepEqual(
      future.map((i) => i.name),
      ["alpha", "gamma"],
    );
  });

  it("falls back to the fallback registry when the registry cannot be fetched", async () => {
    w.server.setFault("/registry.toml", { kind: "status", status: 404, times: 100 });
    w.server.setFile("/fallback.toml", registryToml([entry("from_fallback")]));
    const log = recorder();
    const res = await sync(w.config(), { logger: log });
    assert.equal(res.usedFallback, true);
    assert.deepEqual(
      (await openRegistry(w.config())).map((i) => i.name),
      ["from_fallback"],
    );
    assert.ok(log.lines.some((l) => l.includes("/registry.toml")));
  });

  it("prune never treats images as orphans when the registry came from the fallback", async () => {
    await sync(w.config());
    await mkdir(join(w.store, "alpha"), { recursive: true });
    await writeFile(join(w.store, "alpha", ".archive.sha256"), sha256("alpha"));
    await writeFile(join(w.store, "alpha", "kernel"), "mine");
    w.server.setFault("/registry.toml", { kind: "status", status: 404, times: 100 });
    w.server.setFile("/fallback.toml", registryToml([entry("from_fallback")]));
    assert.equal((await sync(w.config())).usedFallback, true);
    const log = recorder();
    const pruned = await prune(w.config(), { logger: log });
    assert.deepEqual(pruned.removed, []);
    assert.equal(await readFile(join(w.store, "alpha", "kernel"), "utf8"), "mine");
    assert.ok(
      log.lines.some((l) => l.includes("fallback registry")),
      log.lines.join("\n"),
    );

    w.server.setFault("/registry.toml");
    w.server.setFile("/registry.toml", registryToml([entry("beta")]));
    await sync(w.config());
    const dry = await prune(w.config(), { dryRun: true });
    assert.ok(
      dry.removed.some((r) => r.path === join(w.store, "alpha")),
      "orphan once the main registry is back",
    );
  });

  it("when registry and fallback both fail, the error names both and the store keeps its registry", async () => {
    await sync(w.config());
    w.server.setFault("/registry.toml", { kind: "status", status: 500, times: 1000 });
    const cfg = w.config({ fallbackRegistry: w.server.url("/missing-fallback.toml") });
    await assert.rejects(sync(cfg, {}), (err: unknown) => {
      assert.ok(err instanceof AxError);
      assert.match(err.message, /registry\.toml/);
      assert.match(err.message, /missing-fallback\.toml/);
      return true;
    });
    assert.match(await readFile(join(w.store, "images.toml"), "utf8"), /alpha/);
  });

  it("a corrupt images.toml is named with auto-sync off and repaired by a sync with it on", async () => {
    await mkdir(w.store, { recursive: true });
    await writeFile(join(w.store, "images.toml"), "[[images]]\nname = ");
    await assert.rejects(openRegistry(w.config({ autoSync: false })), /images\.toml/);
    const images = await openRegistry(w.config());
    assert.deepEqual(
      images.map((i) => i.name),
      ["alpha"],
    );
  });

  it("a registry from the network cannot point an image at a local file", async () => {
    w.server.setFile("/registry.toml", registryToml([entry("zero", "file:///dev/zero")]));
    await assert.rejects(sync(w.config({ fallbackRegistry: w.registryUrl })), (err: unknown) => {
      assert.ok(err instanceof AxError);
      assert.match(err.message, /registry\.toml: image "zero": url "file:\/\/\/dev\/zero" refused/);
      return true;
    });
  });

  it("asks for the registry before taking the sync lock, and writes it once the lock is free", async () => {
    await mkdir(w.store, { recursive: true });
    const asked = () => w.server.requestsFor("/registry.toml").length;
    const before = asked();
    let syncing: Promise<unknown> | undefined;
    await withLock(w.store, SYNC_LOCK, async () => {
      syncing = sync(w.config());
      for (let i = 0; i < 3000 && asked() === before; i++) {
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      assert.equal(asked(), before + 1, "requested while another sync holds the lock");
      await assert.rejects(readFile(join(w.store, "images.toml")), /ENOENT/, "not written yet");
    });
    await syncing;
    assert.match(await readFile(join(w.store, "images.toml"), "utf8"), /name = "alpha"/);
  });

  it("loads the six real registry files through default.toml's includes", async () => {
    const base = w.server.url("/registry/");
    for (const file of await readdir(FIXTURES)) {
      const text = await readFile(join(FIXTURES, file), "utf8");
      w.server.setFile(
        `/registry/${file}`,
        text.replaceAll(
          "https://raw.githubusercontent.com/arceos-hypervisor/axvisor-guest/refs/heads/main/registry/",
          base,
        ),
      );
    }
    const res = await sync(w.config({ registry: `${base}default.toml` }));
    assert.equal(res.files.length, 6);
    const images = await openRegistry(w.config({ autoSync: false }));
    const keys = new Set(images.map((i) => `${i.name}:${i.version}`));
    assert.equal(keys.size, images.length, "deduplicated by (name, version)");
    assert.equal(images.length, 19 + 21 + 23 + 23 + 23);
    assert.ok(keys.has("qemu_aarch64_linux:0.0.20") && keys.has("qemu_aarch64_linux:0.0.25"));
    assert.ok(
      !images.some((i) => i.version === "0.0.26"),
      "default.toml includes older versions only",
    );

    w.server.setFile(
      "/all.toml",
      registryToml([], ["registry/default.toml", "registry/v0.0.26.toml"]),
    );
    const all = await sync(w.config({ registry: w.server.url("/all.toml") }));
    assert.equal(all.files.length, 8);
    const merged = await openRegistry(w.config({ autoSync: false }));
    assert.equal(merged.length, 19 + 21 + 23 + 23 + 23 + 29);
    assert.ok(merged.some((i) => i.name === "phytiumpi-freertos" && i.version === "0.0.26"));
  });
});
