/**
 * The store's own files are never an image's files: image names and versions are data, and the
 * mapping from (name, version) to store paths refuses what would land on the registry, on another
 * image's archive, `.part` or tree, or on the sync lock. Through the real CLI, on a real store.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { readFile, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { after, before, beforeEach, describe, it } from "node:test";
import fc from "fast-check";
import { StoreNames, archiveFileNames } from "../../src/store/layout.js";
import { CLI, cliEnv, sha256 } from "../helpers/images.js";
import { startWorld, type Published, type World } from "../helpers/world.js";

describe("store names: the store's own files are never an image's files", () => {
  let w: World;
  let demo: Published;
  const at = (...parts: string[]) => join(w.store, ...parts);
  const registryText = () => readFile(at("images.toml"), "utf8");
  before(async () => {
    w = await startWorld();
    demo = await w.publish("demo", "1.0", [{ name: "kernel", data: "demo kernel" }]);
    for (const name of ["images.toml", "demo.tar.gz", "demo.tar.gz.part", "registry"]) {
      await w.publish(name, "1.0", [{ name: "kernel", data: `${name} kernel` }]);
    }
    await w.publish("a", "1", [{ name: "kernel", data: "a:1" }]);
    await w.publish("a-1", "0.0.1", [{ name: "kernel", data: "image a-1" }]);
  });
  after(() => w.close());
  // Each case starts from a fresh store holding demo, so that one case's damage cannot hide another's.
  beforeEach(async () => {
    await rm(w.store, { recursive: true, force: true });
    const run = await w.cli(["-q", "pull", "demo"]);
    assert.equal(run.code, 0, run.stderr);
  });

  it("an image named images.toml is refused; rm images.toml leaves the registry", async () => {
    const registry = await registryText();
    const pulled = await w.cli(["pull", "images.toml"]);
    assert.equal(pulled.code, 1, pulled.stderr);
    assert.match(
      pulled.stderr,
      /^error: image images\.toml cannot be stored: its store name images\.toml is the store's registry file$/m,
    );
    assert.doesNotMatch(pulled.stderr, /internal error/);
    assert.ok((await stat(at("images.toml"))).isFile(), "the registry is still a file");
    assert.equal(await registryText(), registry);

    const removed = await w.cli(["rm", "images.toml"]);
    assert.equal(removed.code, 1, removed.stderr);
    assert.match(removed.stderr, /^error: image images\.toml cannot be stored: /m);
    assert.equal(await registryText(), registry, "rm images.toml never deletes the registry");

    // Later commands work; a version of that image maps to a name of its own.
    const ls = await w.cli(["ls"]);
    assert.equal(ls.code, 0, ls.stderr);
    const versioned = await w.cli(["-q", "pull", "images.toml:1.0"]);
    assert.equal(versioned.code, 0, versioned.stderr);
    assert.equal(versioned.stdout, `${at("images.toml-1.0")}\n`);
    for (const command of [
      ["path", "images.toml"],
      ["info", "images.toml"],
      ["verify", "images.toml"],
    ]) {
      const run = await w.cli(command);
      assert.equal(run.code, 1, `${command.join(" ")}: ${run.stderr}`);
      assert.match(run.stderr, /^error: image images\.toml cannot be stored: /m, command.join(" "));
    }
    assert.equal(await registryText(), registry);
  });

  it("an image named demo.tar.gz cannot replace demo's archive", async () => {
    const pulled = await w.cli(["pull", "demo.tar.gz"]);
    assert.equal(pulled.code, 1, pulled.stderr);
    assert.match(
      pulled.stderr,
      /^error: image demo\.tar\.gz cannot be stored: its store name demo\.tar\.gz ends like an archive or a download of the store \(\.tar\.gz\)$/m,
    );
    assert.ok((await stat(at("demo.tar.gz"))).isFile());
    assert.equal(sha256(await readFile(at("demo.tar.gz"))), demo.entry.sha256);
    const verify = await w.cli(["verify", "demo"]);
    assert.equal(verify.code, 0, verify.stdout + verify.stderr);
  });

  it("an image named demo.tar.gz.part cannot break later pulls of demo", async () => {
    const pulled = await w.cli(["pull", "demo.tar.gz.part"]);
    assert.equal(pulled.code, 1, pulled.stderr);
    assert.match(pulled.stderr, /^error: image demo\.tar\.gz\.part cannot be stored: /m);
    assert.equal(existsSync(at("demo.tar.gz.part")), false);
    const rm = await w.cli(["-q", "rm", "demo"]);
    assert.equal(rm.code, 0, rm.stderr);
    const again = await w.cli(["-q", "pull", "demo"]);
    assert.equal(again.code, 0, again.stderr);
    assert.equal(again.stdout, `${at("demo")}\n`);
  });

  it("a:1 and an image named a-1 would share <store>/a-1: both are refused, naming each other", async () => {
    const versioned = await w.cli(["pull", "a:1"]);
    assert.equal(versioned.code, 1, versioned.stderr);
    assert.match(
      versioned.stderr,
      /^error: image a:1 cannot be stored: its store name a-1 is also that of image a-1$/m,
    );
    const named = await w.cli(["pull", "a-1"]);
    assert.equal(named.code, 1, named.stderr);
    assert.match(
      named.stderr,
      /^error: image a-1 cannot be stored: its store name a-1 is also that of image a:1$/m,
    );
    assert.equal(existsSync(at("a-1")), false);
    // The rest of the registry stays usable, even these images under their other names.
    const others = await w.cli(["-q", "pull", "a", "a-1:0.0.1"]);
    assert.equal(others.code, 0, others.stderr);
    assert.equal(others.stdout, `${at("a")}\n${at("a-1-0.0.1")}\n`);
    const ls = await w.cli(["ls"]);
    assert.match(ls.stdout, /^a-1 /m, "ls still lists the refused image");
    // rm a: its own tree and archive go; a:1 is nobody's to remove by name, image a-1 stays.
    const rm = await w.cli(["rm", "a"]);
    assert.equal(rm.code, 0, rm.stderr);
    assert.match(rm.stderr, /^warning: image a:1 cannot be stored: .*: not removed$/m);
    assert.equal(existsSync(at("a")), false);
    assert.ok(existsSync(at("a-1-0.0.1")));
  });

  it("an image named registry does not share the sync's lock", async () => {
    // A sync that hangs on the registry server holds the sync lock for as long as it runs.
    const requests = w.server.requestsFor("/registry.toml").length;
    w.server.setFault("/registry.toml", { kind: "hang" });
    const sync = spawn(process.execPath, [CLI, "-S", w.store, "-R", w.registryUrl, "sync"], {
      env: cliEnv(),
      stdio: "ignore",
    });
    const syncClosed = new Promise((resolve) => sync.on("close", resolve));
    try {
      while (w.server.requestsFor("/registry.toml").length === requests) {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      // The pull either finishes or says it waits for "another process": the answer decides.
      const pull = spawn(
        process.execPath,
        [CLI, "-S", w.store, "-R", w.registryUrl, "pull", "registry"],
        { env: cliEnv(), stdio: ["ignore", "pipe", "pipe"] },
      );
      let stdout = "";
      let stderr = "";
      pull.stdout.on("data", (d: Buffer) => (stdout += d));
      const outcome = await new Promise<string>((resolve) => {
        pull.stderr.on("data", (d: Buffer) => {
          stderr += d;
          if (/waiting/.test(stderr)) resolve("waited for the sync's lock");
        });
        pull.on("close", (code) => resolve(`exit ${code}`));
      });
      pull.kill("SIGKILL");
      assert.equal(outcome, "exit 0", stderr);
      assert.equal(stdout, `${at("registry")}\n`);
    } finally {
      sync.kill("SIGKILL");
      await syncClosed;
      w.server.setFault("/registry.toml");
    }
  });
});

describe("store names: the mapping (property)", () => {
  // A small alphabet, so that collisions (a-1 / a:1, A / a) and store names are frequent.
  const part = fc.oneof(
    { arbitrary: fc.stringMatching(/^[aA1][a1-]{0,2}$/), weight: 4 },
    fc.constantFrom("images.toml", "images.toml.x", "demo", "demo.tar.gz", "d.tgz.part", "v.tar"),
    fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._+-]{0,12}$/),
  );
  const entry = fc.record({ name: part, version: part });

  it("is injective over what it accepts, and disjoint from the store's own files", () => {
    fc.assert(
      fc.property(fc.array(entry, { maxLength: 30 }), (pairs) => {
        const images = pairs.map(({ name, version }) => ({
          name,
          version,
          description: "d",
          sha256: "0".repeat(64),
          arch: "aarch64",
          url: "https://example.invalid/x.tar.gz",
        }));
        const names = new StoreNames(images);
        const specs = [
          ...new Map(
            images.flatMap((e) => [
              [e.name, { name: e.name }],
              [`${e.name}:${e.version}`, { name: e.name, version: e.version }],
            ]),
          ).values(),
        ];
        const taken = new Map<string, string>();
        for (const spec of specs) {
          if (names.problem(spec) !== undefined) continue;
          const base = names.baseName(spec);
          const files = [base, ...archiveFileNames(base)].map((f) => f.toLowerCase());
          assert.ok(!files.includes("images.toml") && !base.startsWith("."), base);
          for (const file of files) {
            const other = taken.get(file);
            assert.equal(other, undefined, `${JSON.stringify(spec)} and ${other} share ${file}`);
            taken.set(file, JSON.stringify(spec));
          }
          assert.deepEqual(names.owner(base), { kind: "image", spec });
        }
      }),
      { numRuns: 300 },
    );
  });
});
