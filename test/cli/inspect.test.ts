/** `info`, `path`, `ls --json`, `pull --json`, `du` / `ls --local`: through the real CLI. */
import assert from "node:assert/strict";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type {
  ImageJson,
  PullErrorJson,
  PullJson,
  RegistryImageJson,
  StoreJson,
} from "../../src/cli/json.js";
import { startWorld, type World } from "../helpers/world.js";

describe("inspecting the store", () => {
  let w: World;
  before(async () => {
    w = await startWorld();
    const releases = [
      ["qemu_aarch64_linux", "0.0.25", "2025-10-01T00:00:00Z"],
      ["qemu_aarch64_linux", "0.0.26", "2026-04-10T02:35:51Z"],
      ["phytiumpi-freertos", "0.0.26", undefined],
    ] as const;
    for (const [name, version, released_at] of releases) {
      await w.publish(name, version, [{ name: "kernel", data: `${name} ${version}` }], {
        released_at,
      });
    }
    const pulled = await w.cli(["-q", "pull", "qemu_aarch64_linux", "phytiumpi-freertos:0.0.26"]);
    assert.equal(pulled.code, 0, pulled.stderr);
  });
  after(() => w.close());

  it("path prints the tree of a pulled image, and fails with a hint to pull otherwise", async () => {
    const latest = await w.cli(["path", "qemu_aarch64_linux"]);
    assert.equal(latest.code, 0, latest.stderr);
    assert.equal(latest.stdout, `${join(w.store, "qemu_aarch64_linux")}\n`);
    const versioned = await w.cli(["path", "phytiumpi-freertos:0.0.26"]);
    assert.equal(versioned.stdout, `${join(w.store, "phytiumpi-freertos-0.0.26")}\n`);
    const byName = await w.cli(["path", "phytiumpi-freertos"]);
    assert.equal(byName.stdout, `${join(w.store, "phytiumpi-freertos-0.0.26")}\n`, byName.stderr);
    const missing = await w.cli(["path", "qemu_aarch64_linux:0.0.25"]);
    assert.equal(missing.code, 1);
    assert.equal(missing.stdout, "");
    assert.match(missing.stderr, /^error: image qemu_aarch64_linux:0\.0\.25 is not pulled into /m);
    assert.match(missing.stderr, /^hint: run `axvisor-image pull qemu_aarch64_linux:0\.0\.25`$/m);
  });

  it("info lists every version with where it is; --json has the documented fields", async () => {
    const text = await w.cli(["info", "qemu_aarch64_linux"]);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /^version 0\.0\.26 \(latest\)$/m);
    assert.match(text.stdout, /^version 0\.0\.25$/m);
    assert.ok(text.stdout.indexOf("0.0.26") < text.stdout.indexOf("0.0.25"), "newest first");
    assert.match(text.stdout, new RegExp(`tree +${join(w.store, "qemu_aarch64_linux")}$`, "m"));
    assert.match(text.stdout, /local +not in the store/);

    const json = await w.cli(["info", "qemu_aarch64_linux", "--json"]);
    const versions = JSON.parse(json.stdout) as RegistryImageJson[];
    assert.deepEqual(
      versions.map((v) => [v.version, v.tree, v.archive]),
      [
        ["0.0.26", join(w.store, "qemu_aarch64_linux"), join(w.store, "qemu_aarch64_linux.tar.gz")],
        ["0.0.25", null, null],
      ],
    );
    assert.deepEqual(Object.keys(versions[0]!), [
      "name",
      "version",
      "arch",
      "description",
      "sha256",
      "url",
      "released_at",
      "archive",
      "tree",
      "bytes",
      "pulled",
      "registry",
      "verified_by",
    ]);
    assert.equal(versions[0]!.registry, w.registryUrl, "the registry it came from, as configured");
    assert.equal(versions[0]!.verified_by, null, "no key pinned: not verified");
    assert.ok(versions[0]!.bytes > 0);
    assert.equal(versions[1]!.bytes, 0);

    const unknown = await w.cli(["info", "qemu_aarch64_linx"]);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /^error: image not found: qemu_aarch64_linx$/m);
  });

  it("ls --json has one object per row with local state; plain ls is unchanged", async () => {
    const run = await w.cli(["ls", "--json"]);
    assert.equal(run.code, 0, run.stderr);
    const rows = JSON.parse(run.stdout) as ImageJson[];
    assert.deepEqual(
      rows.map((r) => [r.name, r.version, r.released_at, r.tree]),
      [
        ["phytiumpi-freertos", "0.0.26", null, join(w.store, "phytiumpi-freertos-0.0.26")],
        [
          "qemu_aarch64_linux",
          "0.0.26",
          "2026-04-10T02:35:51Z",
          join(w.store, "qemu_aarch64_linux"),
        ],
      ],
    );
    const verbose = JSON.parse((await w.cli(["ls", "-v", "--json", "qemu"])).stdout) as ImageJson[];
    assert.deepEqual(
      verbose.map((r) => r.version),
      ["0.0.26", "0.0.25"],
    );
    const plain = await w.cli(["ls"]);
    assert.match(plain.stdout, /^Name +Version +Architecture +Pulled +Description\n/);
  });

  it("pull --json prints an array in argument order, with error objects, and exits 1", async () => {
    const run = await w.cli(["pull", "--json", "phytiumpi-freertos", "nope", "qemu_aarch64_linux"]);
    assert.equal(run.code, 1);
    const results = JSON.parse(run.stdout) as (PullJson | PullErrorJson)[];
    assert.deepEqual(
      results.map((r) => [r.image, r.ok]),
      [
        ["phytiumpi-freertos", true],
        ["nope", false],
        ["qemu_aarch64_linux", true],
      ],
    );
    const [first, failed] = results as [PullJson, PullErrorJson];
    assert.equal(first.path, join(w.store, "phytiumpi-freertos"));
    assert.equal(first.tree, first.path);
    assert.equal(first.version, "0.0.26");
    assert.match(failed.error, /image not found: nope/);
    assert.match(run.stderr, /^error: image not found: nope$/m);
  });

  it("du and ls --local show each image and leftovers with sizes; --json too", async () => {
    await writeFile(join(w.store, "qemu_aarch64_linux-0.0.25.tar.gz.part"), "partial");
    await mkdir(join(w.store, "forgotten-1.0"));
    await writeFile(join(w.store, "forgotten-1.0", ".archive.sha256"), "0".repeat(64));
    const text = await w.cli(["du"]);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /^Image +Version +Archive +Tree +Total$/m);
    assert.match(text.stdout, /^phytiumpi-freertos:0\.0\.26 +0\.0\.26 +[\d.]+ KiB +[\d.]+ KiB/m);
    assert.match(text.stdout, /^forgotten-1\.0 \(orphan\) +\? +- +[\d.]+ KiB/m);
    assert.match(text.stdout, /^leftovers of interrupted work: .* in 1 item /m);
    assert.match(text.stdout, new RegExp(`^total: [\\d.]+ KiB in ${w.store}$`, "m"));
    const local = await w.cli(["ls", "--local"]);
    assert.equal(local.stdout, text.stdout);

    const json = JSON.parse((await w.cli(["ls", "--local", "--json"])).stdout) as StoreJson;
    assert.equal(json.store, w.store);
    const byImage = new Map(json.images.map((i) => [i.image, i]));
    assert.equal(byImage.get("qemu_aarch64_linux")?.version, "0.0.26");
    assert.equal(byImage.get("forgotten-1.0")?.orphan, true);
    assert.deepEqual(
      json.leftovers.map((l) => l.kind),
      ["part"],
    );
    const sum = json.images.reduce((s, i) => s + i.archive_bytes + i.tree_bytes, 0);
    assert.ok(json.total_bytes >= sum && sum > 0);
  });
});

describe("path of an image pulled only as NAME:VERSION", () => {
  let w: World;
  before(async () => {
    w = await startWorld();
    await w.publish("board", "1.0", [{ name: "kernel", data: "one" }], {
      released_at: "2025-01-01T00:00:00Z",
    });
    await w.publish("board", "2.0", [{ name: "kernel", data: "two" }], {
      released_at: "2026-01-01T00:00:00Z",
    });
    assert.equal((await w.cli(["-q", "pull", "board:1.0"])).code, 0);
  });
  after(() => w.close());

  it("path NAME fails with a hint naming the version that is pulled", async () => {
    const run = await w.cli(["path", "board"]);
    assert.equal(run.code, 1);
    assert.equal(run.stdout, "");
    assert.match(run.stderr, /^error: image board is not pulled into /m);
    assert.match(
      run.stderr,
      /^hint: board:1\.0 is pulled: run `axvisor-image path board:1\.0`, or `axvisor-image pull board`$/m,
    );
    const versioned = await w.cli(["path", "board:1.0"]);
    assert.equal(versioned.stdout, `${join(w.store, "board-1.0")}\n`, versioned.stderr);
  });

  it("ls has a Pulled column and --json a pulled field, per version", async () => {
    await w.publish("kit", "1.0", [{ name: "kernel", data: "kit" }]);
    await w.publish("absent", "1.0", [{ name: "kernel", data: "absent" }]);
    assert.equal((await w.cli(["-q", "sync"])).code, 0);
    assert.equal((await w.cli(["-q", "pull", "--no-extract", "kit"])).code, 0);
    const table = (stdout: string) =>
      stdout
        .trimEnd()
        .split("\n")
        .map((l) => l.split(/ {2,}/));
    const plain = await w.cli(["ls"]);
    assert.equal(plain.code, 0, plain.stderr);
    assert.deepEqual(
      table(plain.stdout).map((cells) => [cells[0], cells[3]]),
      [
        ["Name", "Pulled"],
        ["absent", "-"],
        ["board", "1.0"],
        ["kit", "archive"],
      ],
    );
    const verbose = await w.cli(["ls", "-v", "board"]);
    assert.deepEqual(
      table(verbose.stdout).map((cells) => [cells[1], cells[3]]),
      [
        ["Version", "Pulled"],
        ["2.0", "-"],
        ["1.0", "yes"],
      ],
    );
    const json = JSON.parse((await w.cli(["ls", "-v", "--json"])).stdout) as ImageJson[];
    assert.deepEqual(
      json.map((r) => [r.name, r.version, r.pulled]),
      [
        ["absent", "1.0", false],
        ["board", "2.0", false],
        ["board", "1.0", true],
        ["kit", "1.0", true],
      ],
    );
  });
});
