import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, readFile, readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { sha256 } from "../helpers/images.js";
import { startWorld, type World } from "../helpers/world.js";

const KERNEL = randomBytes(2 << 20);
const ROOTFS = Buffer.alloc(1 << 20, 0x5a);

/**
 * Nothing in the store looks good and is not: an archive under its final name has the registry's
 * digest, and a tree with a marker holds every file.
 */
async function assertNothingLooksGoodButIsNot(store: string, name: string, digest: string) {
  const archive = join(store, `${name}.tar.gz`);
  if (existsSync(archive)) assert.equal(sha256(await readFile(archive)), digest, "archive");
  const marker = join(store, name, ".archive.sha256");
  if (existsSync(marker)) {
    assert.equal(await readFile(marker, "utf8"), digest);
    assert.deepEqual(await readFile(join(store, name, "kernel")), KERNEL);
    assert.deepEqual(await readFile(join(store, name, "rootfs.img")), ROOTFS);
  }
}

describe("crashes and full disks", () => {
  let w: World;
  let digest = "";
  let size = 0;
  before(async () => {
    w = await startWorld();
    const img = await w.publish("guest", "1.0", [
      { name: "kernel", data: KERNEL },
      { name: "rootfs.img", data: ROOTFS },
    ]);
    digest = img.entry.sha256;
    size = img.archive.length;
    assert.equal((await w.cli(["sync"])).code, 0);
  });
  after(() => w.close());

  for (const fraction of [0, 0.1, 0.5, 0.99, 1]) {
    it(`SIGKILL with ${fraction * 100}% of the archive received: next pull repairs`, async () => {
      execFileSync("rm", ["-rf", join(w.store, "guest"), join(w.store, "guest.tar.gz")]);
      const afterBytes = Math.floor(size * fraction);
      w.server.setFault("/files/guest-1.0.tar.gz", { kind: "stall", afterBytes });
      const { child, closed } = w.startPull("guest");
      // The .part lags the network by at most one 1 MiB write batch.
      await w.waitForPart("guest.tar.gz", Math.max(0, afterBytes - (1 << 20)));
      await sleep(100);
      child.kill("SIGKILL");
      await closed;
      await assertNothingLooksGoodButIsNot(w.store, "guest", digest);

      const run = await w.cli(["pull", "guest"]);
      assert.equal(run.code, 0, run.stderr);
      await assertNothingLooksGoodButIsNot(w.store, "guest", digest);
      assert.ok(existsSync(join(w.store, "guest", ".archive.sha256")));
      const staging = await readdir(join(w.store, ".axvisor-image", "staging"));
      assert.deepEqual(staging, [], "staging debris of the killed pull removed");
    });
  }

  it("SIGKILL at random moments of repeated pulls never leaves a good-looking bad file", async () => {
    for (const delay of [20, 60, 120, 200]) {
      execFileSync("rm", ["-rf", join(w.store, "guest"), join(w.store, "guest.tar.gz")]);
      const { child, closed } = w.startPull("guest");
      await sleep(delay);
      child.kill("SIGKILL");
      await closed;
      await assertNothingLooksGoodButIsNot(w.store, "guest", digest);
    }
    assert.equal((await w.cli(["pull", "guest"])).code, 0);
  });

  it("SIGKILL during a sync leaves the registry that was there, or the new one, never a torn one", async () => {
    const before = await readFile(join(w.store, "images.toml"), "utf8");
    await w.publish("extra", "2.0", [{ name: "k", data: "x" }]);
    const after = (await w.cli(["-S", join(w.root, "probe"), "sync"])).code;
    assert.equal(after, 0);
    const synced = await readFile(join(w.root, "probe", "images.toml"), "utf8");
    for (const delay of [10, 40, 80, 150, 300]) {
      await writeFile(join(w.store, "images.toml"), before);
      w.server.setFault("/registry.toml", { kind: "stall", afterBytes: 50 });
      const { child, closed } = w.startCli(["sync"]);
      await sleep(delay);
      child.kill("SIGKILL");
      await closed;
      w.server.setFault("/registry.toml");
      const text = await readFile(join(w.store, "images.toml"), "utf8");
      assert.ok(text === before || text === synced, `registry intact after a kill at ${delay} ms`);
      const left = (await readdir(w.store)).filter(
        (n) => n.startsWith("images.toml") && n !== "images.toml",
      );
      assert.deepEqual(left, [], "no temporary registry file left visible");
    }
    const run = await w.cli(["sync"]);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(await readFile(join(w.store, "images.toml"), "utf8"), synced);
  });

  it(
    "a full disk names the file, removes what it wrote and keeps the registry",
    { skip: process.getuid?.() !== 0 ? "mounting a small tmpfs needs root" : false },
    async () => {
      const mnt = join(w.root, "small");
      await mkdir(mnt);
      execFileSync("mount", ["-t", "tmpfs", "-o", "size=1536k", "tmpfs", mnt]);
      try {
        const store = join(mnt, "store");
        const sync = await w.cli(["-S", store, "sync"]);
        assert.equal(sync.code, 0, sync.stderr);
        const registry = await readFile(join(store, "images.toml"), "utf8");
        const run = await w.cli(["-S", store, "pull", "guest"]);
        assert.equal(run.code, 1);
        assert.match(
          run.stderr,
          new RegExp(`^error: no space left on device while writing ${mnt}/`, "m"),
        );
        assert.equal(await readFile(join(store, "images.toml"), "utf8"), registry);
        const left = await readdir(store);
        assert.deepEqual(left.sort(), [".axvisor-image", ".last_sync", "images.toml"]);
        assert.deepEqual(await readdir(join(store, ".axvisor-image", "staging")), []);
      } finally {
        execFileSync("umount", [mnt]);
      }
    },
  );
});
