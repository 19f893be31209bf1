import assert from "node:assert/strict";
import { mkdir, writeFile } from "node:fs/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { join, relative } from "node:path";
import { after, before, describe, it } from "node:test";
import { AbortedError } from "../../src/errors.js";
import { RegistryError } from "../../src/registry/errors.js";
import { loadRegistry } from "../../src/registry/load.js";
import { startFaultServer } from "../helpers/fault-server.js";
import { registryToml, sha256, tempDir } from "../helpers/images.js";
import { failureMessage, fixture, useServedWorld } from "./support.js";

const VERSIONED = ["v0.0.20", "v0.0.22", "v0.0.23", "v0.0.24", "v0.0.25", "v0.0.26"];
const IMAGES_PER_FILE: Record<string, number> = {
  "v0.0.20": 19,
  "v0.0.22": 21,
  "v0.0.23": 23,
  "v0.0.24": 23,
  "v0.0.25": 23,
  "v0.0.26": 29,
};
const NO_RETRIES = { retries: 0, retryBaseMs: 1 };

function entry(name: string, version = "0.0.1") {
  return { name, version, url: `https://x/${name}.tar.gz`, sha256: sha256(name) };
}

/** The one-line AxError message `promise` rejects with. */
function failure(promise: Promise<unknown>): Promise<string> {
  return failureMessage(() => promise);
}

describe("loadRegistry over HTTP", () => {
  const world = useServedWorld();

  it("loads default.toml with its includes and merges them in breadth-first order", async () => {
    const logged: string[] = [];
    const result = await loadRegistry(world.server.url("/registry/default.toml"), {
      logger: { info: () => {}, warn: (m) => logged.push(m) },
    });
    const included = VERSIONED.slice(0, 5);
    const expected = included.reduce((n, v) => n + (IMAGES_PER_FILE[v] ?? 0), 0);
    assert.equal(result.images.length, expected);
    assert.equal(result.images.length, 109);
    assert.deepEqual(result.files, [
      world.server.url("/registry/default.toml"),
      ...included.map((v) => world.server.url(`/registry/${v}.toml`)),
    ]);
    assert.equal(result.images[0]?.version, "0.0.20");
    assert.equal(result.images.at(-1)?.version, "0.0.25");
    assert.deepEqual(result.warnings, []);
    assert.deepEqual(logged, []);
  });

  it("fetches the includes of one level concurrently, each URL once", async () => {
    world.server.setFile(
      "/c/root.toml",
      registryToml(
        [],
        VERSIONED.map((v) => `${v}.toml`),
      ),
    );
    for (const v of VERSIONED) {
      const text = `${fixture(`${v}.toml`)}\n[[includes]]\nurl = "shared.toml"\n`;
      world.server.setFile(`/c/${v}.toml`, text);
    }
    world.server.setFile("/c/shared.toml", registryToml([entry("shared")], ["root.toml"]));
    world.server.delayMs = 300;
    const result = await loadRegistry(world.server.url("/c/root.toml"));
    assert.ok(
      world.server.maxConcurrent > 1,
      `max concurrent requests: ${world.server.maxConcurrent}`,
    );
    assert.equal(world.server.maxConcurrent, VERSIONED.length);
    assert.equal(world.server.requests.length, 1 + VERSIONED.length + 1);
    assert.deepEqual(result.files, [
      world.server.url("/c/root.toml"),
      ...VERSIONED.map((v) => world.server.url(`/c/${v}.toml`)),
      world.server.url("/c/shared.toml"),
    ]);
    const total = Object.values(IMAGES_PER_FILE).reduce((a, b) => a + b, 0);
    assert.equal(result.images.length, total + 1);
    assert.equal(result.images.at(-1)?.name, "shared");
  });

  it("sends conditional requests on the second load and uses the 304s", async () => {
    const url = world.server.url("/registry/default.toml");
    const first = await loadRegistry(url, { cacheDir: world.cacheDir });
    assert.ok(world.server.requests.every((r) => r.status === 200 && !r.headers["if-none-match"]));
    world.server.requests.length = 0;
    const second = await loadRegistry(url, { cacheDir: world.cacheDir });
    assert.equal(world.server.requests.length, 6);
    for (const request of world.server.requests) {
      assert.match(String(request.headers["if-none-match"]), /^"[0-9a-f]{16}"$/);
      assert.equal(request.headers["if-modified-since"], "Wed, 01 Jan 2025 00:00:00 GMT");
      assert.equal(request.status, 304);
    }
    assert.deepEqual(second, first);
  });

  it("keeps the cached copy of an include that fails, with a warning naming it", async () => {
    const url = world.server.url("/registry/default.toml");
    const first = await loadRegistry(url, { cacheDir: world.cacheDir });
    const broken = world.server.url("/registry/v0.0.22.toml");
    world.server.setStatus("/registry/v0.0.22.toml", 500);
    const logged: string[] = [];
    const second = await loadRegistry(url, {
      cacheDir: world.cacheDir,
      http: NO_RETRIES,
      logger: { info: () => {}, warn: (m) => logged.push(m) },
    });
    world.server.setStatus("/registry/v0.0.22.toml", undefined);
    assert.deepEqual(second.images, first.images);
    assert.deepEqual(second.warnings, [
      `${broken}: HTTP 500 Internal Server Error; using the copy of ${broken} from an earlier sync`,
    ]);
    assert.deepEqual(logged, second.warnings);
  });

  it("keeps the cached copy of an include that turned invalid", async () => {
    const url = world.server.url("/registry/default.toml");
    const first = await loadRegistry(url, { cacheDir: world.cacheDir });
    world.server.setFile("/registry/v0.0.20.toml", "[[images]]\nname = 'x'\n");
    const second = await loadRegistry(url, { cacheDir: world.cacheDir });
    assert.deepEqual(second.images, first.images);
    assert.match(
      second.warnings[0] ?? "",
      /v0\.0\.20\.toml:1: image "x": version is missing; using the copy/,
    );
  });

  it("fails when the root fails, even with a cached copy", async () => {
    const url = world.server.url("/registry/default.toml");
    await loadRegistry(url, { cacheDir: world.cacheDir });
    world.server.setStatus("/registry/default.toml", 404);
    const message = await failure(loadRegistry(url, { cacheDir: world.cacheDir }));
    world.server.setStatus("/registry/default.toml", undefined);
    assert.equal(message, `${url}: HTTP 404 Not Found`);
  });

  it("fails on a missing include without a cached copy, naming the URL and status", async () => {
    world.server.setFile("/m/root.toml", registryToml([entry("a")], ["gone.toml"]));
    const message = await failure(
      loadRegistry(world.server.url("/m/root.toml"), { cacheDir: world.cacheDir }),
    );
    assert.equal(message, `${world.server.url("/m/gone.toml")}: HTTP 404 Not Found`);
  });

  it("reads each file once when includes form a cycle", async () => {
    world.server.setFile("/cy/a.toml", registryToml([entry("a")], ["b.toml", "a.toml"]));
    world.server.setFile("/cy/b.toml", registryToml([entry("b")], ["a.toml", "/cy/b.toml"]));
    const result = await loadRegistry(world.server.url("/cy/a.toml"));
    assert.deepEqual(result.files, [
      world.server.url("/cy/a.toml"),
      world.server.url("/cy/b.toml"),
    ]);
    assert.deepEqual(
      result.images.map((i) => i.name),
      ["a", "b"],
    );
    assert.equal(world.server.requests.length, 2);
  });

  it("follows 32 levels of includes and refuses the 33rd, naming the URL and depth", async () => {
    let last = 32;
    world.server.generate = (path) => {
      const n = Number(/^\/chain\/(\d+)\.toml$/.exec(path)?.[1]);
      if (Number.isNaN(n)) return undefined;
      return registryToml([entry(`level${n}`)], n < last ? [`${n + 1}.toml`] : []);
    };
    const ok = await loadRegistry(world.server.url("/chain/0.toml"));
    assert.equal(ok.files.length, 33);
    last = 40;
    const message = await failure(loadRegistry(world.server.url("/chain/0.toml")));
    assert.equal(
      message,
      `${world.server.url("/chain/32.toml")}: include ${world.server.url("/chain/33.toml")} is 33 levels ` +
        "below the root registry (the limit is 32; is there a chain of includes?)",
    );
  });

  it("refuses a file larger than 16 MiB, naming the URL", async () => {
    world.server.setFile("/big.toml", Buffer.alloc(16 * 1024 * 1024 + 1, "#"));
    const message = await failure(loadRegistry(world.server.url("/big.toml")));
    assert.equal(message, `${world.server.url("/big.toml")}: registry file is larger than 16 MiB`);
  });

  it("refuses binary files", async () => {
    world.server.setFile("/nul.toml", Buffer.from("[[images]]\n\0\0"));
    world.server.setFile("/latin1.toml", Buffer.from([0x23, 0x20, 0xe9, 0x0a]));
    assert.equal(
      await failure(loadRegistry(world.server.url("/nul.toml"))),
      `${world.server.url("/nul.toml")}: not a text file (it contains NUL bytes)`,
    );
    assert.equal(
      await failure(loadRegistry(world.server.url("/latin1.toml"))),
      `${world.server.url("/latin1.toml")}: not a text file (invalid UTF-8)`,
    );
  });

  it("refuses a remote registry that includes a local file", async () => {
    world.server.setFile("/local.toml", registryToml([], ["file:///etc/hostname"]));
    assert.match(
      await failure(loadRegistry(world.server.url("/local.toml"))),
      /local\.toml: include "file:\/\/\/etc\/hostname" refused: a remote registry cannot include local files$/,
    );
  });

  it("reports conflicting duplicates across files as warnings", async () => {
    const changed = { ...entry("a"), sha256: sha256("other") };
    world.server.setFile("/d/root.toml", registryToml([entry("a")], ["more.toml"]));
    world.server.setFile("/d/more.toml", registryToml([changed, entry("a", "2")]));
    const result = await loadRegistry(world.server.url("/d/root.toml"));
    assert.deepEqual(
      result.images.map((i) => [i.name, i.version, i.sha256]),
      [
        ["a", "0.0.1", sha256("a")],
        ["a", "2", sha256("a")],
      ],
    );
    assert.deepEqual(result.warnings, [
      `image a:0.0.1 in ${world.server.url("/d/more.toml")} differs from the one in ` +
        `${world.server.url("/d/root.toml")}; keeping the one from ${world.server.url("/d/root.toml")}`,
    ]);
  });

  it("stops with AbortedError when the signal aborts", async () => {
    world.server.delayMs = 200;
    const controller = new AbortController();
    const loading = loadRegistry(world.server.url("/registry/default.toml"), {
      signal: controller.signal,
    });
    setTimeout(() => controller.abort(), 50);
    await assert.rejects(loading, AbortedError);
  });
});

describe("loadRegistry, next level early", () => {
  it("requests an include as soon as the file naming it is read, not after its whole level", async () => {
    // slow.toml answers only once shared.toml (included by fast.toml, its neighbour) was asked
    // for (or after 5 s, so that a loader waiting for the whole level still ends).
    const events: string[] = [];
    let sharedAsked: () => void = () => {};
    const asked = new Promise<void>((resolve) => (sharedAsked = resolve));
    const bodies: Record<string, string> = {
      "/root.toml": registryToml([], ["fast.toml", "slow.toml"]),
      "/fast.toml": registryToml([entry("fast")], ["shared.toml"]),
      "/slow.toml": registryToml([entry("slow")], ["shared.toml"]),
      "/shared.toml": registryToml([entry("shared")]),
    };
    const server = http.createServer((req, res) => {
      const path = req.url ?? "";
      events.push(`asked ${path}`);
      if (path === "/shared.toml") sharedAsked();
      const answer = () => {
        if (res.writableEnded) return;
        events.push(`answered ${path}`);
        res.end(bodies[path]);
      };
      if (path !== "/slow.toml") return answer();
      const fallback = setTimeout(answer, 5000);
      void asked.then(() => {
        clearTimeout(fallback);
        answer();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    try {
      const { port } = server.address() as AddressInfo;
      const result = await loadRegistry(`http://127.0.0.1:${port}/root.toml`);
      assert.ok(
        events.indexOf("asked /shared.toml") < events.indexOf("answered /slow.toml"),
        events.join(", "),
      );
      // The merge order is still breadth-first: root, fast, slow, then shared.
      assert.deepEqual(
        result.images.map((i) => i.name),
        ["fast", "slow", "shared"],
      );
      assert.equal(events.filter((e) => e === "asked /shared.toml").length, 1);
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});

describe("loadRegistry from local files", () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  before(async () => {
    dir = await tempDir("axi-registry-");
  });
  after(() => dir.cleanup());

  it("resolves relative includes against the including file, for paths and file:// URLs", async () => {
    await mkdir(join(dir.path, "rel", "sub"), { recursive: true });
    await writeFile(
      join(dir.path, "rel", "root.toml"),
      registryToml([entry("root")], ["sub/a.toml"]),
    );
    await writeFile(
      join(dir.path, "rel", "sub", "a.toml"),
      registryToml([entry("a")], ["../b.toml"]),
    );
    await writeFile(join(dir.path, "rel", "b.toml"), registryToml([entry("b")], ["./root.toml"]));
    const expectedFiles = ["root.toml", "sub/a.toml", "b.toml"].map((f) =>
      join(dir.path, "rel", f),
    );
    for (const root of [
      relative(process.cwd(), join(dir.path, "rel", "root.toml")),
      `file://${join(dir.path, "rel", "root.toml")}`,
    ]) {
      const result = await loadRegistry(root);
      assert.deepEqual(result.files, expectedFiles);
      assert.deepEqual(
        result.images.map((i) => i.name),
        ["root", "a", "b"],
      );
    }
  });

  it("refuses more than 1000 files per load before reading them", async () => {
    const many = Array.from({ length: 1000 }, (_, i) => `f${i}.toml`);
    const root = join(dir.path, "many.toml");
    await writeFile(root, registryToml([], many));
    const message = await failure(loadRegistry(root));
    assert.equal(
      message,
      `${root}: include ${join(dir.path, "f999.toml")} would be registry file number 1001 ` +
        "(the limit is 1000 files per load)",
    );
  });

  it("reads exactly 1000 files", async () => {
    await mkdir(join(dir.path, "k"));
    const names = Array.from({ length: 999 }, (_, i) => `f${i}.toml`);
    await Promise.all(names.map((f) => writeFile(join(dir.path, "k", f), "")));
    await writeFile(join(dir.path, "k", "root.toml"), registryToml([], names));
    const result = await loadRegistry(join(dir.path, "k", "root.toml"));
    assert.equal(result.files.length, 1000);
  });

  it("refuses a local file larger than 16 MiB, and missing files, naming the path", async () => {
    const big = join(dir.path, "big.toml");
    await writeFile(big, Buffer.alloc(16 * 1024 * 1024 + 1, "#"));
    assert.equal(await failure(loadRegistry(big)), `${big}: registry file is larger than 16 MiB`);
    const missing = join(dir.path, "missing.toml");
    assert.equal(await failure(loadRegistry(missing)), `${missing}: no such file`);
  });

  it("refuses unsupported URL schemes, naming the URL", async () => {
    for (const url of ["ftp://example.com/r.toml", "oci://ghcr.io/r:1"]) {
      const message = await failure(loadRegistry(url));
      assert.match(message, new RegExp(`^unsupported registry URL scheme ".*" in ${url} `));
      await assert.rejects(loadRegistry(url), RegistryError);
    }
  });
});

describe("loadRegistry over a flaky connection", () => {
  it("retries a registry file whose body was cut", async () => {
    const server = await startFaultServer();
    try {
      server.setFile("/r.toml", registryToml([entry("a"), entry("b")]));
      server.setFault("/r.toml", { kind: "cut", afterBytes: 20 });
      const result = await loadRegistry(server.url("/r.toml"), { http: { retryBaseMs: 1 } });
      assert.deepEqual(
        result.images.map((i) => i.name),
        ["a", "b"],
      );
      assert.equal(server.requestsFor("/r.toml").length, 2);
    } finally {
      await server.close();
    }
  });
});
