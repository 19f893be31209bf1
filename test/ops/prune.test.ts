/**
 * Prune and sync never remove what they cannot prove is theirs: an empty or shrunken registry is
 * refused, a user's folder beside an archive of the same name survives, and copies are attributed
 * by what they were pulled as, not by the first entry with their sha256. Through the real CLI.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdir, readFile, readdir, rm, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { StoreJson } from "../../src/cli/json.js";
import { makeTarGz, registryToml, sha256 } from "../helpers/images.js";
import { startWorld, type World } from "../helpers/world.js";

describe("prune and sync: nothing removed without proof", () => {
  let w: World;
  const at = (...parts: string[]) => join(w.store, ...parts);
  before(async () => {
    w = await startWorld();
  });
  after(() => w.close());

  it("a registry answering 200 with an empty body: sync refused, registry kept, prune refuses", async () => {
    for (const name of ["alpha", "beta", "gamma"]) {
      await w.publish(name, "1.0", [{ name: "kernel", data: name }]);
    }
    const pulled = await w.cli(["-q", "pull", "alpha", "beta:1.0"]);
    assert.equal(pulled.code, 0, pulled.stderr);
    const registry = await readFile(at("images.toml"), "utf8");
    const previous = w.server.requestsFor("/registry.toml").length;
    w.server.setFile("/registry.toml", "");

    const refused = await w.cli(["sync"]);
    assert.equal(refused.code, 1, refused.stderr);
    assert.match(
      refused.stderr,
      /^error: sync refused: the registry .*registry\.toml lists no images$/m,
    );
    assert.match(refused.stderr, /^hint: .*--allow-empty/m);
    assert.equal(await readFile(at("images.toml"), "utf8"), registry, "the registry is kept");
    assert.ok(w.server.requestsFor("/registry.toml").length > previous);

    // Auto-sync of a stale registry: the same refusal only warns, and the old registry is used.
    await writeFile(at(".last_sync"), "1000");
    const pruned = await w.cli(["prune"]);
    assert.equal(pruned.code, 0, pruned.stderr);
    assert.match(pruned.stderr, /^warning: auto-sync failed: sync refused: .* lists no images/m);
    assert.match(pruned.stdout, /^freed 0 B \(0 items\)$/m);
    for (const kept of ["alpha", "alpha.tar.gz", "beta-1.0", "beta-1.0.tar.gz"]) {
      assert.ok(existsSync(at(kept)), kept);
    }

    // Asked for: the empty registry is taken, and prune refuses to judge the store by it.
    const forced = await w.cli(["sync", "--allow-empty"]);
    assert.equal(forced.code, 0, forced.stderr);
    const refusedPrune = await w.cli(["prune"]);
    assert.equal(refusedPrune.code, 1, refusedPrune.stderr);
    assert.match(
      refusedPrune.stderr,
      /^error: prune refused: the store's registry lists no images$/m,
    );
    assert.match(refusedPrune.stderr, /^hint: /m);
    for (const kept of ["alpha", "alpha.tar.gz", "beta-1.0", "beta-1.0.tar.gz"]) {
      assert.ok(existsSync(at(kept)), kept);
    }
  });

  it("a sync that would drop most of the registry's images is refused unless asked", async () => {
    const names = ["one", "two", "three", "four"];
    const entries = names.map((name) => ({
      name,
      url: w.server.url(`/files/${name}.tar.gz`),
      sha256: sha256(name),
    }));
    w.server.setFile("/registry.toml", registryToml(entries));
    assert.equal((await w.cli(["sync"])).code, 0);
    w.server.setFile("/registry.toml", registryToml(entries.slice(0, 1)));
    const refused = await w.cli(["sync"]);
    assert.equal(refused.code, 1, refused.stderr);
    assert.match(
      refused.stderr,
      /^error: sync refused: the registry .* drops 3 of the 4 images the store's registry lists \(four, three, two\)$/m,
    );
    assert.match(refused.stderr, /^hint: .*--allow-shrink/m);
    assert.match(await readFile(at("images.toml"), "utf8"), /name = "four"/);
    // Dropping half is no alarm; a different registry (-R) is a choice, not an accident.
    w.server.setFile("/registry.toml", registryToml(entries.slice(0, 2)));
    assert.equal((await w.cli(["sync"])).code, 0);
    w.server.setFile("/other.toml", registryToml(entries.slice(3)));
    const other = await w.cli(["-R", w.server.url("/other.toml"), "sync"]);
    assert.equal(other.code, 0, other.stderr);
    assert.doesNotMatch(await readFile(at("images.toml"), "utf8"), /name = "one"/);
  });

  it("prune leaves <store>/mydata/ (no marker) and mydata.tar.gz beside it alone", async () => {
    await w.publish("kept", "1.0", [{ name: "kernel", data: "kept" }]);
    assert.equal((await w.cli(["sync"])).code, 0);
    await mkdir(at("mydata"));
    await writeFile(at("mydata", "notes.txt"), "my own work");
    await writeFile(at("mydata.tar.gz"), await makeTarGz([{ name: "notes.txt", data: "backup" }]));
    const dry = await w.cli(["prune", "--dry-run"]);
    assert.equal(dry.code, 0, dry.stderr);
    assert.doesNotMatch(dry.stdout, /mydata/);
    const run = await w.cli(["prune"]);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(await readFile(at("mydata", "notes.txt"), "utf8"), "my own work");
    assert.ok(existsSync(at("mydata.tar.gz")));
  });

  it("one archive re-released under several versions: each copy is what it was pulled as", async () => {
    // As in the real axvisor-guest registry: qemu_aarch64_arceos 0.0.23 to 0.0.26 share a sha256.
    const archive = await makeTarGz([{ name: "arceos.bin", data: "the same build" }]);
    const releases = [
      ["0.0.23", "2026-03-30T02:37:06Z"],
      ["0.0.24", "2026-04-01T06:48:18Z"],
      ["0.0.25", "2026-04-03T01:28:26Z"],
      ["0.0.26", "2026-04-10T02:36:20Z"],
    ] as const;
    for (const [version, released_at] of releases) {
      await w.publish("qemu_aarch64_arceos", version, [], { archive, released_at });
    }
    assert.equal((await w.cli(["sync"])).code, 0);
    const x = "qemu_aarch64_arceos";
    const pulled = await w.cli(["-q", "pull", x, `${x}:0.0.25`]);
    assert.equal(pulled.code, 0, pulled.stderr);

    const versions = async () => {
      const du = await w.cli(["du", "--json"]);
      assert.equal(du.code, 0, du.stderr);
      const doc = JSON.parse(du.stdout) as StoreJson;
      return doc.images.filter((i) => i.image.startsWith(x)).map((i) => [i.image, i.version]);
    };
    assert.deepEqual(await versions(), [
      [x, "0.0.26"],
      [`${x}:0.0.25`, "0.0.25"],
    ]);
    const info = JSON.parse((await w.cli(["info", x, "--json"])).stdout) as {
      tree: string | null;
    }[];
    assert.deepEqual(
      info.map((v) => v.tree),
      [at(x), at(`${x}-0.0.25`), null, null],
    );

    const run = await w.cli(["prune", "--keep", "1"]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(
      run.stdout,
      new RegExp(`^removed .* ${at(`${x}-0.0.25`)} {2}\\(older version\\)$`, "m"),
    );
    assert.ok(existsSync(at(x)) && existsSync(at(`${x}.tar.gz`)), "the newest copy is kept");
    assert.equal(existsSync(at(`${x}-0.0.25`)), false);

    // A store filled by the Rust tool has no records: a copy counts as the newest entry it matches.
    await w.cli(["-q", "pull", `${x}:0.0.23`]);
    await rm(at(".axvisor-image", "pulled"), { recursive: true, force: true });
    assert.deepEqual(await versions(), [
      [x, "0.0.26"],
      [`${x}:0.0.23`, "0.0.23"],
    ]);
    const again = await w.cli(["prune", "--keep", "1"]);
    assert.equal(again.code, 0, again.stderr);
    assert.ok(existsSync(at(x)), "never deleted as an older version");
    assert.equal(existsSync(at(`${x}-0.0.23`)), false);
  });

  it("prune never follows a bookkeeping folder that is a link out of the store", async () => {
    await w.publish("linked", "1.0", [{ name: "kernel", data: "linked" }]);
    assert.equal((await w.cli(["sync", "--allow-shrink"])).code, 0);
    const pulled = await w.cli(["-q", "pull", "linked"]);
    assert.equal(pulled.code, 0, pulled.stderr);
    // A restored cache or a hand-made link: the tool's own folders pointing at a user's files.
    const outside = join(w.root, "outside");
    await mkdir(join(outside, "work"), { recursive: true });
    await writeFile(join(outside, "work", "notes.txt"), "my own work");
    await writeFile(join(outside, "linked.123.0123abcd"), "named like a staging tree");
    await writeFile(join(outside, `${"0".repeat(64)}.json`), "named like an upload session");
    for (const dir of ["trash", "staging", "uploads"]) {
      await rm(at(".axvisor-image", dir), { recursive: true, force: true });
      await symlink(outside, at(".axvisor-image", dir));
    }
    const dry = await w.cli(["prune", "--dry-run"]);
    assert.equal(dry.code, 0, dry.stderr);
    assert.doesNotMatch(dry.stdout, /outside|\.axvisor-image/);
    const run = await w.cli(["prune"]);
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual((await readdir(outside)).sort(), [
      `${"0".repeat(64)}.json`,
      "linked.123.0123abcd",
      "work",
    ]);
    assert.equal(await readFile(join(outside, "work", "notes.txt"), "utf8"), "my own work");
  });
});
