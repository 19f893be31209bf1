import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { open, readFile, readdir, stat, utimes } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { sha256 } from "../helpers/images.js";
import { startWorld, type World } from "../helpers/world.js";

const BIG = randomBytes(3 << 20);

describe("pull engine through the CLI", () => {
  let w: World;
  let archiveSize = 0;
  before(async () => {
    w = await startWorld();
    const img = await w.publish("big", "1.0", [
      { name: "kernel", data: BIG },
      { name: "etc/hostname", data: "guest" },
    ]);
    archiveSize = img.archive.length;
    await w.cli(["sync"]);
  });
  after(() => w.close());

  it("resumes after SIGKILL mid-download with Range + If-Range, transferring about 1x", async () => {
    w.server.setFault("/files/big-1.0.tar.gz", { kind: "stall", afterBytes: archiveSize >> 1 });
    const part = join(w.store, "big.tar.gz.part");
    const { child, closed } = w.startPull("big");
    // The .part lags the network by at most one 1 MiB write batch.
    await w.waitForPart("big.tar.gz", (archiveSize >> 1) - (1 << 20));
    child.kill("SIGKILL");
    await closed;
    assert.ok((await stat(part)).size > 0, "the .part survived the kill");

    const run = await w.cli(["pull", "big"]);
    assert.equal(run.code, 0, run.stderr);
    assert.doesNotMatch(run.stderr, /waiting/, "the killed pull's lock is recovered at once");
    assert.deepEqual(await readFile(join(w.store, "big", "kernel")), BIG);
    const requests = w.server.requestsFor("/files/big-1.0.tar.gz");
    const last = requests.at(-1)!;
    assert.match(String(last.headers.range), /^bytes=\d+-$/);
    assert.ok(last.headers["if-range"], "If-Range guards the resume");
    assert.ok(w.server.bytesSent("/files/big-1.0.tar.gz") <= archiveSize * 1.2);
    assert.equal(existsSync(part), false);
  });

  it("Ctrl-C stops a pull cleanly, keeps the .part, and the next pull resumes it", async () => {
    const img = await w.publish("interrupted", "1.0", [{ name: "kernel", data: BIG }]);
    await w.cli(["sync"]);
    w.server.setFault(img.path, { kind: "stall", afterBytes: img.archive.length >> 1 });
    const { child, closed } = w.startPull("interrupted");
    await w.waitForPart("interrupted.tar.gz", (img.archive.length >> 1) - (1 << 20));
    child.kill("SIGINT");
    const code = await closed;
    assert.equal(code, 1);
    assert.ok((await stat(join(w.store, "interrupted.tar.gz.part"))).size > 0, ".part kept");
    const staging = await readdir(join(w.store, ".axvisor-image", "staging"));
    assert.deepEqual(
      staging.filter((n) => n.startsWith("interrupted.")),
      [],
      "staging removed",
    );
    const run = await w.cli(["pull", "interrupted"]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(String(w.server.requestsFor(img.path).at(-1)?.headers.range), /^bytes=[1-9]\d*-$/);
    assert.deepEqual(await readFile(join(w.store, "interrupted", "kernel")), BIG);
  });

  it("six processes pulling one image: all succeed, one transfer, tree whole", async () => {
    await w.publish("shared", "1.0", [{ name: "kernel", data: BIG }]);
    await w.cli(["sync"]);
    const runs = await Promise.all(Array.from({ length: 6 }, () => w.cli(["pull", "shared"])));
    for (const r of runs) {
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout.trim(), join(w.store, "shared"));
    }
    assert.deepEqual(await readFile(join(w.store, "shared", "kernel")), BIG);
    const size = (await stat(join(w.store, "shared.tar.gz"))).size;
    assert.ok(w.server.bytesSent("/files/shared-1.0.tar.gz") <= size * 1.5);
  });

  it("concurrent syncs and ls never see a torn registry", async () => {
    const runs = await Promise.all([
      ...Array.from({ length: 4 }, () => w.cli(["sync"])),
      ...Array.from({ length: 4 }, () => w.cli(["--auto-sync-threshold", "0", "ls"])),
    ]);
    for (const r of runs) assert.equal(r.code, 0, r.stderr);
    for (const r of runs.slice(4)) assert.match(r.stdout, /shared/);
  });

  it("a warm pull trusts the verified-archive stamp; --verify hashes and repairs", async () => {
    const archive = join(w.store, "shared.tar.gz");
    const mtime = 1_700_000_000; // a whole second, so that utimes can restore it exactly
    await utimes(archive, mtime, mtime);
    assert.equal((await w.cli(["pull", "shared", "--no-extract"])).code, 0, "re-stamped");
    const fd = await open(archive, "r+");
    await fd.write(Buffer.from("garbage!"), 0, 8, 100);
    await fd.close();
    await utimes(archive, mtime, mtime);
    const before = w.server.requestsFor("/files/shared-1.0.tar.gz").length;
    const warm = await w.cli(["pull", "shared", "--no-extract"]);
    assert.equal(warm.code, 0, warm.stderr);
    assert.equal(w.server.requestsFor("/files/shared-1.0.tar.gz").length, before, "not re-hashed");
    const verified = await w.cli(["pull", "shared", "--no-extract", "--verify"]);
    assert.equal(verified.code, 0, verified.stderr);
    assert.equal(w.server.requestsFor("/files/shared-1.0.tar.gz").length, before + 1);
    const entry = (await readFile(join(w.store, "images.toml"), "utf8")).match(
      /name = "shared"[\s\S]*?sha256 = "(\w+)"/,
    );
    assert.equal(sha256(await readFile(archive)), entry?.[1]);
  });

  it("mirrors are tried first and the log names the one that served; a failing mirror falls back", async () => {
    const img = await w.publish("mirrored", "1.0", [{ name: "k", data: "kernel" }]);
    w.server.setFile("/mirror/mirrored-1.0.tar.gz", img.archive);
    await w.cli(["sync"]);
    const mirror = `${w.server.url("/files/")}=${w.server.url("/mirror/")}`;
    const run = await w.cli(["--mirror", mirror, "pull", "mirrored"]);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(w.server.requestsFor("/files/mirrored-1.0.tar.gz").length, 0);
    assert.equal(w.server.requestsFor("/mirror/mirrored-1.0.tar.gz").length, 1);
    assert.match(run.stderr, /\/mirror\/mirrored-1\.0\.tar\.gz/);

    const broken = `${w.server.url("/files/")}=${w.server.url("/nowhere/")}`;
    const fallback = await w.cli(["--mirror", broken, "pull", "mirrored:1.0"]);
    assert.equal(fallback.code, 0, fallback.stderr);
    assert.equal(w.server.requestsFor("/files/mirrored-1.0.tar.gz").length, 1);
  });

  it("a stalled connection is abandoned after --stall-timeout and resumed", async () => {
    const img = await w.publish("stally", "1.0", [{ name: "kernel", data: BIG }]);
    await w.cli(["sync"]);
    w.server.setFault(img.path, { kind: "stall", afterBytes: 100_000 });
    const run = await w.cli(["pull", "stally", "--stall-timeout", "1"]);
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(await readFile(join(w.store, "stally", "kernel")), BIG);
    assert.equal(w.server.requestsFor(img.path).length, 2);
    assert.ok(w.server.bytesSent(img.path) <= img.archive.length * 1.2);
  });
});
