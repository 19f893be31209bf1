/** `verify [--repair]` and `prune [--dry-run] [--keep N]`: through the real CLI, on a real store. */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { execFileSync } from "node:child_process";
import {
  appendFile,
  lstat,
  mkdir,
  readFile,
  readdir,
  rm,
  symlink,
  writeFile,
} from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { after, before, describe, it } from "node:test";
import { uploadSessionPath } from "../../src/store/layout.js";
import { withLock } from "../../src/store/lock.js";
import { sha256 } from "../helpers/images.js";
import { startWorld, type World, type Published } from "../helpers/world.js";

describe("verify and prune", () => {
  let w: World;
  let newest: Published;
  const at = (...parts: string[]) => join(w.store, ...parts);
  before(async () => {
    w = await startWorld();
    await w.publish("alpha", "1.0", [{ name: "kernel", data: "alpha one" }], {
      released_at: "2025-01-01T00:00:00Z",
    });
    newest = await w.publish("alpha", "2.0", [{ name: "kernel", data: "alpha two" }], {
      released_at: "2026-01-01T00:00:00Z",
    });
    await w.publish("beta", "1.0", [{ name: "rootfs", data: "beta" }]);
    const run = await w.cli(["-q", "pull", "alpha", "alpha:1.0", "beta:1.0"]);
    assert.equal(run.code, 0, run.stderr);
  });
  after(() => w.close());

  it("verify passes on a healthy store, one ok line per archive and tree", async () => {
    const run = await w.cli(["verify"]);
    assert.equal(run.code, 0, run.stderr);
    const lines = run.stdout.trim().split("\n");
    assert.equal(lines.length, 6);
    assert.ok(lines.every((l) => l.startsWith("ok      ")));
    assert.ok(lines.includes(`ok      ${at("alpha.tar.gz")}`));
  });

  it("verify fails naming each broken image; NAME:VERSION narrows it; unknown names fail", async () => {
    await appendFile(at("alpha.tar.gz"), "garbage");
    await rm(at("beta-1.0", ".archive.sha256"));
    const run = await w.cli(["verify"]);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /^error: verification failed: alpha, beta:1\.0$/m);
    assert.match(run.stderr, /^hint: run `axvisor-image verify --repair`/m);
    assert.match(run.stdout, new RegExp(`^FAILED  archive ${at("alpha.tar.gz")} has sha256 `, "m"));
    assert.match(run.stdout, new RegExp(`^FAILED  tree ${at("beta-1.0")} has no marker`, "m"));
    assert.match(run.stdout, new RegExp(`^ok      ${at("alpha")}$`, "m"));

    const narrowed = await w.cli(["verify", "alpha:1.0"]);
    assert.equal(narrowed.code, 0, narrowed.stderr);
    assert.equal(narrowed.stdout.trim().split("\n").length, 2);

    const unknown = await w.cli(["verify", "gamma"]);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /^error: not in the store .*: gamma$/m);
  });

  it("verify --repair pulls the failed images again", async () => {
    const run = await w.cli(["verify", "--repair"]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stderr, /repaired alpha: /);
    assert.match(run.stderr, /repaired beta:1\.0: /);
    assert.equal(sha256(await readFile(at("alpha.tar.gz"))), newest.entry.sha256);
    assert.ok(existsSync(at("beta-1.0", ".archive.sha256")));
    const again = await w.cli(["verify"]);
    assert.equal(again.code, 0, again.stdout);
  });

  it("prune --dry-run lists orphans and leftovers without removing; prune removes them", async () => {
    const { staging, trash, upload } = {
      staging: at(".axvisor-image", "staging", "alpha.4242.0123abcd"),
      trash: at(".axvisor-image", "trash", "beta-1.0.4242.89abcdef"),
      upload: uploadSessionPath(w.store, "127.0.0.1:5000/team", `sha256:${"a".repeat(64)}`),
    };
    // An image pulled (by the Rust tool: no pulled-as records) and since dropped by the registry:
    // the tree's marker proves the archive beside it was pulled, not put there by a user.
    await writeFile(at("ghost-9.tar.gz"), "orphan archive");
    await mkdir(at("ghost-9"));
    await writeFile(at("ghost-9", ".archive.sha256"), sha256("orphan archive"));
    await mkdir(at("beta")); // pulled as NAME, but holds a version the registry does not list
    await writeFile(at("beta", ".archive.sha256"), "f".repeat(64));
    await mkdir(at("notes")); // not ours: no marker, no registry name
    await writeFile(at("alpha-1.0.tar.gz.part"), "partial");
    await writeFile(at("alpha-1.0.tar.gz.part.json"), "{}");
    await mkdir(staging, { recursive: true });
    await writeFile(join(staging, "half"), "x");
    await mkdir(trash, { recursive: true });
    // A cut upload's saved session (mirror --to oci://), beside a file that is not one.
    await mkdir(dirname(upload), { recursive: true });
    await writeFile(upload, '{"location":"http://127.0.0.1:5000/v2/team/blobs/uploads/1"}');
    const notSession = join(dirname(upload), "notes.json");
    await writeFile(notSession, "{}");
    // The temporary copy a write goes through, left by a kill.
    const cutWrite = join(dirname(upload), `.${basename(upload)}.0123456789ab.tmp`);
    await writeFile(cutWrite, '{"loc');
    const doomed = [
      at("alpha-1.0.tar.gz.part"),
      at("alpha-1.0.tar.gz.part.json"),
      at("beta"),
      at("ghost-9"),
      at("ghost-9.tar.gz"),
      staging,
      trash,
      upload,
      cutWrite,
    ].sort();

    const dry = await w.cli(["prune", "--dry-run"]);
    assert.equal(dry.code, 0, dry.stderr);
    const listed = dry.stdout.trim().split("\n");
    assert.deepEqual(
      listed.slice(0, -1).map((l) => /^would remove +\S+ \S+ {2}(\S+) {2}\(/.exec(l)?.[1]),
      doomed,
    );
    assert.match(listed.at(-1)!, /^would free [\d.]+ (KiB|B) \(9 items\)$/);
    assert.ok(
      doomed.every((p) => existsSync(p)),
      "a dry run removes nothing",
    );

    const real = await w.cli(["prune"]);
    assert.equal(real.code, 0, real.stderr);
    assert.match(real.stdout, /^freed [\d.]+ (KiB|B) \(9 items\)$/m);
    assert.deepEqual(
      doomed.filter((p) => existsSync(p)),
      [],
    );
    assert.ok(existsSync(notSession), "a file that is not a session is kept");
    assert.match(real.stdout, /\.json {2}\(interrupted upload\)$/m);
    for (const kept of ["notes", "alpha", "alpha.tar.gz", "alpha-1.0", "beta-1.0"]) {
      assert.ok(existsSync(at(kept)), kept);
    }
  });

  it("prune --keep 1 removes older versions; a pull in progress keeps its .part", async () => {
    await writeFile(at("beta-1.0.tar.gz.part"), "in flight");
    const run = await withLock(w.store, "beta-1.0", () => w.cli(["prune", "--keep", "1"]));
    assert.equal(run.code, 0, run.stderr);
    assert.match(
      run.stdout,
      new RegExp(`^removed .* ${at("alpha-1.0")} {2}\\(older version\\)$`, "m"),
    );
    assert.match(run.stderr, /^warning: beta-1\.0: in use by another process; left alone$/m);
    assert.equal(existsSync(at("alpha-1.0")), false);
    assert.equal(existsSync(at("alpha-1.0.tar.gz")), false);
    assert.ok(existsSync(at("beta-1.0.tar.gz.part")));
    assert.ok(existsSync(at("alpha")) && existsSync(at("beta-1.0")));
  });
});

describe("a store's bookkeeping files that are FIFOs or devices (a restored cache)", () => {
  let w: World;
  before(async () => {
    w = await startWorld();
  });
  after(() => w.close());

  it("du, ls --local, verify and prune read past them, never waiting on one", async () => {
    await w.publish("alpha", "1.0", [{ name: "kernel", data: "alpha" }]);
    assert.equal((await w.cli(["-q", "pull", "alpha", "alpha:1.0"])).code, 0);
    const book = join(w.store, ".axvisor-image");
    const fifos = [
      join(book, "pulled", "alpha.tar.gz.json"),
      join(book, "pulled", "alpha-1.0.json"),
      join(book, "verified", "alpha.tar.gz.json"),
    ];
    for (const fifo of fifos) {
      await rm(fifo, { force: true });
      execFileSync("mkfifo", [fifo]);
    }
    await rm(join(book, "verified", "alpha-1.0.tar.gz.json"), { force: true });
    // A link to a FIFO outside the store (never to a device: a tool that wrote through the link
    // would replace it).
    const outsideFifo = join(w.root, "outside.fifo");
    execFileSync("mkfifo", [outsideFifo]);
    await symlink(outsideFifo, join(book, "verified", "alpha-1.0.tar.gz.json"));
    for (const args of [["du"], ["ls", "--local"], ["verify"], ["prune", "--dry-run"]]) {
      const run = await w.cli(args, { timeoutMs: 20_000 });
      assert.equal(run.code, 0, `${args.join(" ")}: ${run.stderr}`);
    }
    const du = await w.cli(["du"], { timeoutMs: 20_000 });
    assert.match(du.stdout, /^alpha:1\.0 /m);
  });
  it("a FIFO as images.toml, .last_sync or the parsed-registry cache: ls syncs, never waits", async () => {
    await w.publish("alpha", "1.0", [{ name: "kernel", data: "alpha" }]);
    assert.equal((await w.cli(["sync"])).code, 0);
    const book = join(w.store, ".axvisor-image");
    for (const file of [
      join(w.store, "images.toml"),
      join(w.store, ".last_sync"),
      join(book, "images.json"),
    ]) {
      await rm(file, { force: true });
      execFileSync("mkfifo", [file]);
      const run = await w.cli(["ls"], { timeoutMs: 20_000 });
      assert.equal(run.code, 0, `${file}: ${run.stderr}`);
      assert.match(run.stdout, /alpha/);
    }
  });
  it("a FIFO as resume metadata, provenance or a registry's last good copy: pull and lock go on", async () => {
    await w.publish("alpha", "1.0", [{ name: "kernel", data: "alpha" }]);
    assert.equal((await w.cli(["sync"])).code, 0);
    assert.equal((await w.cli(["rm", "alpha:1.0"])).code, 0);
    const book = join(w.store, ".axvisor-image");
    await writeFile(join(w.store, "alpha-1.0.tar.gz.part"), "x");
    const copies = (await readdir(join(book, "registries"))).map((n) =>
      join(book, "registries", n),
    );
    const fifos = [
      join(w.store, "alpha-1.0.tar.gz.part.json"),
      join(book, "provenance.json"),
      ...copies,
    ];
    for (const fifo of fifos) {
      await rm(fifo, { force: true });
      execFileSync("mkfifo", [fifo]);
    }
    for (const args of [
      ["pull", "alpha:1.0"],
      ["lock", "alpha", "--lock", join(w.root, "a.lock")],
      ["info", "alpha"],
    ]) {
      const run = await w.cli(args, { timeoutMs: 20_000 });
      assert.equal(run.code, 0, `${args.join(" ")}: ${run.stderr}`);
    }
  });
  it("a bookkeeping file that is a link out of the store is replaced, never written through", async () => {
    await w.publish("alpha", "1.0", [{ name: "kernel", data: "alpha" }]);
    assert.equal((await w.cli(["-q", "pull", "alpha:1.0"])).code, 0);
    const book = join(w.store, ".axvisor-image");
    const links = [
      join(book, "verified", "alpha-1.0.tar.gz.json"),
      join(book, "pulled", "alpha-1.0.tar.gz.json"),
      join(book, "images.json"),
      join(book, "synced-from"),
      join(w.store, ".last_sync"),
      join(w.store, "images.toml"),
    ];
    const victims: string[] = [];
    for (const [i, link] of links.entries()) {
      const victim = join(w.root, `victim-${i}`);
      await writeFile(victim, "a user's file");
      await rm(link, { force: true });
      await symlink(victim, link);
      victims.push(victim);
    }
    for (const args of [["sync"], ["verify"], ["pull", "alpha:1.0"]]) {
      const run = await w.cli(args, { timeoutMs: 20_000 });
      assert.equal(run.code, 0, `${args.join(" ")}: ${run.stderr}`);
    }
    for (const victim of victims)
      assert.equal(await readFile(victim, "utf8"), "a user's file", victim);
  });
  it("a .part that is a link out of the store is replaced, never downloaded into", async () => {
    await w.publish("beta", "1.0", [{ name: "kernel", data: "beta" }]);
    assert.equal((await w.cli(["sync"])).code, 0);
    const victim = join(w.root, "victim-part");
    await writeFile(victim, "a user's file");
    await symlink(victim, join(w.store, "beta-1.0.tar.gz.part"));
    const run = await w.cli(["pull", "beta:1.0"], { timeoutMs: 20_000 });
    assert.equal(run.code, 0, run.stderr);
    assert.equal(await readFile(victim, "utf8"), "a user's file");
    assert.ok((await lstat(join(w.store, "beta-1.0.tar.gz"))).isFile());
  });
});
