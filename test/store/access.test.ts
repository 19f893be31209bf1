/**
 * A store that is not a directory, or that cannot be written: one clear `error:` line naming the
 * path, never an internal error; on a read-only store the commands that only read still work.
 * Through the real CLI; the read-only store is a read-only bind mount (root ignores file modes).
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { cliEnv, runCli } from "../helpers/images.js";
import { startWorld, type World } from "../helpers/world.js";

/** Mounts `source` read-only at `target`; returns why not when this machine does not allow it. */
function mountReadOnly(source: string, target: string): string | undefined {
  try {
    execFileSync("mount", ["--bind", source, target], { stdio: "pipe" });
  } catch (err) {
    return `cannot bind-mount (needs root and mount permission): ${(err as Error).message.split("\n")[0]}`;
  }
  try {
    execFileSync("mount", ["-o", "remount,ro,bind", target], { stdio: "pipe" });
  } catch (err) {
    execFileSync("umount", [target]);
    return `cannot remount read-only: ${(err as Error).message.split("\n")[0]}`;
  }
  return undefined;
}

describe("store access: not a directory, read-only", () => {
  let w: World;
  const cli = (store: string, args: string[]) =>
    runCli(["-S", store, "-R", w.registryUrl, ...args], { cwd: w.root, env: cliEnv() });
  before(async () => {
    w = await startWorld();
    await w.publish("alpha", "1.0", [{ name: "kernel", data: "alpha" }]);
    await w.publish("beta", "1.0", [{ name: "kernel", data: "beta" }]);
    const run = await w.cli(["-q", "pull", "alpha"]);
    assert.equal(run.code, 0, run.stderr);
  });
  after(() => w.close());

  const everyCommand = [
    ["ls"],
    ["du"],
    ["path", "alpha"],
    ["info", "alpha"],
    ["verify"],
    ["prune"],
    ["rm", "alpha"],
    ["sync"],
    ["pull", "alpha"],
  ];

  it("-S naming a regular file: every command says so, naming it", async () => {
    const file = join(w.root, "not-a-store");
    await writeFile(file, "a file");
    for (const store of [file, join(file, "sub")]) {
      for (const args of everyCommand) {
        const run = await cli(store, args);
        const what = `${store} ${args.join(" ")}: ${run.stderr}`;
        assert.equal(run.code, 1, what);
        assert.match(run.stderr, /^error: the store .* is not a directory/m, what);
        assert.ok(run.stderr.includes(file), what);
        assert.doesNotMatch(run.stderr, /internal error/, what);
      }
    }
  });

  it("<store>/.axvisor-image being a regular file: commands that lock name it, readers still work", async () => {
    const store = join(w.root, "bookkeeping-is-a-file");
    assert.equal((await cli(store, ["-q", "pull", "alpha"])).code, 0);
    await rm(join(store, ".axvisor-image"), { recursive: true });
    await writeFile(join(store, ".axvisor-image"), "a file");
    for (const args of [["ls"], ["du"], ["path", "alpha"], ["info", "alpha"], ["pull", "alpha"]]) {
      const run = await cli(store, args);
      assert.equal(run.code, 0, `${args.join(" ")}: ${run.stderr}`);
    }
    for (const args of [["sync"], ["pull", "beta"], ["rm", "alpha"], ["verify"]]) {
      const run = await cli(store, args);
      const what = `${args.join(" ")}: ${run.stderr}`;
      assert.equal(run.code, 1, what);
      assert.match(
        run.stderr,
        new RegExp(`^error: ${join(store, ".axvisor-image")} is not a directory`, "m"),
        what,
      );
      assert.doesNotMatch(run.stderr, /internal error/, what);
    }
  });

  it("a read-only store: ls, info, path, verify, du and config work; writers say read-only", async (t) => {
    const ro = join(w.root, "read-only");
    await mkdir(ro);
    await writeFile(join(w.store, "beta.tar.gz.part"), "an interrupted download");
    await writeFile(join(w.store, ".last_sync"), "1000"); // stale: auto-sync is attempted
    const skip = mountReadOnly(w.store, ro);
    if (skip !== undefined) {
      t.skip(skip);
      return;
    }
    try {
      for (const args of [
        ["ls"],
        ["ls", "--json"],
        ["info", "alpha"],
        ["path", "alpha"],
        ["verify"],
        ["verify", "alpha"],
        ["du"],
        ["config"],
        ["pull", "alpha"],
      ]) {
        const run = await cli(ro, args);
        const what = `${args.join(" ")}: ${run.stderr}`;
        assert.equal(run.code, 0, what);
        assert.doesNotMatch(run.stderr, /^error:/m, what);
      }
      const ls = await cli(ro, ["ls"]);
      assert.match(ls.stderr, /^warning: auto-sync failed: .*read-only/m);
      assert.match((await cli(ro, ["verify"])).stdout, /^ok {6}.*alpha\.tar\.gz$/m);
      for (const args of [["pull", "beta"], ["rm", "alpha"], ["prune"], ["sync"]]) {
        const run = await cli(ro, args);
        const what = `${args.join(" ")}: ${run.stderr}`;
        assert.equal(run.code, 1, what);
        assert.match(run.stderr, new RegExp(`^error: .*the store ${ro} is read-only`, "m"), what);
        assert.doesNotMatch(run.stderr, /internal error|EROFS:/, what);
      }
    } finally {
      execFileSync("umount", [ro]);
    }
  });
});
