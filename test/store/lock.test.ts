/**
 * The store's own cross-process lock (src/store/lock.ts): mutual exclusion between real
 * processes, killed holders, and each stale-lock rule, with owner records written as other
 * processes, hosts and containers would leave them.
 */
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, readFile, readdir, rm, stat, utimes, writeFile } from "node:fs/promises";
import { hostname } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { lockPaths } from "../../src/store/layout.js";
import { ownerRecord } from "../../src/store/lock-owner.js";
import { tryWithLock, withLock } from "../../src/store/lock.js";
import { tempDir } from "../helpers/images.js";

const HOLDER = fileURLToPath(new URL("../helpers/lock-holder.ts", import.meta.url));
const linux = existsSync("/proc/self/stat") ? false : "needs /proc (Linux)";

function holder(store: string, name: string, ...args: string[]): ChildProcess {
  return spawn(process.execPath, ["--import", "tsx", HOLDER, store, name, ...args], {
    stdio: ["ignore", "pipe", "inherit"],
  });
}

/** Resolves with everything `child` printed once it printed `text` (or exited). */
function printed(child: ChildProcess, text: string): Promise<string> {
  return new Promise((resolve) => {
    let out = "";
    child.stdout!.on("data", (d: Buffer) => {
      out += d;
      if (out.includes(text)) resolve(out);
    });
    child.on("close", () => resolve(out));
  });
}

const closed = (child: ChildProcess) =>
  new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once("close", () => resolve());
  });

describe("store locks", () => {
  let dir: { path: string; cleanup: () => Promise<void> };
  let n = 0;
  /** A fresh store for each case. */
  const store = async () => {
    const path = join(dir.path, `store${n++}`);
    await mkdir(path);
    return path;
  };
  before(async () => {
    dir = await tempDir();
  });
  after(() => dir.cleanup());

  /** Makes the lock `name` of `s` as another process would have left it. */
  async function fakeLock(
    s: string,
    name: string,
    owner: Record<string, unknown> | undefined,
    mtime?: number,
  ) {
    const { lock, owner: ownerPath } = lockPaths(s, name);
    await mkdir(lock, { recursive: true });
    if (owner) await writeFile(ownerPath, JSON.stringify({ token: "0123", ...owner }));
    if (mtime !== undefined) await utimes(lock, mtime, mtime);
    return lock;
  }
  const takes = (s: string, name: string, staleMs = 60_000) =>
    tryWithLock(s, name, async () => {}, { staleMs });

  it("six processes taking one lock 5 times each: never two inside, no update lost", async () => {
    const s = await store();
    const children = Array.from({ length: 6 }, () => holder(s, "img", "cycles", "5"));
    const outputs = await Promise.all(children.map((c) => printed(c, "\u0000")));
    for (const out of outputs) assert.doesNotMatch(out, /overlap/);
    assert.equal(await readFile(join(s, "counter"), "utf8"), "30");
    assert.deepEqual(await readdir(join(s, ".axvisor-image", "locks")), [], "released");
  });

  it("SIGKILL storm: holders killed at random moments; the others never overlap and go on at once", async () => {
    const s = await store();
    let overlaps = "";
    for (let round = 0; round < 3; round++) {
      const children = Array.from({ length: 4 }, () => holder(s, "img", "cycles", "6", "60000"));
      const outs = children.map((c) => printed(c, "\u0000"));
      await Promise.race(children.map((c) => printed(c, "cycle")));
      for (const victim of [children[round]!, children[3]!]) {
        await sleep(Math.random() * 150);
        victim.kill("SIGKILL");
      }
      // A long stale time: only the dead-owner rule lets the survivors finish.
      overlaps += (await Promise.all(outs)).join("");
      await Promise.all(children.map(closed));
    }
    assert.doesNotMatch(overlaps, /overlap/);
    const last = holder(s, "img", "cycles", "1", "60000");
    assert.match(await printed(last, "cycle"), /cycle/, "a lock left by a killed holder is taken");
  });

  it("a holder killed on this machine: its lock is taken at once, whatever its age", async () => {
    const s = await store();
    const child = holder(s, "img", "hold");
    await printed(child, "held");
    assert.equal(await takes(s, "img"), false, "held by a live process");
    child.kill("SIGKILL");
    await closed(child);
    assert.equal(await takes(s, "img"), true);
  });

  it("a live holder on this machine keeps its lock however long it was not refreshed", async () => {
    const s = await store();
    const child = holder(s, "img", "hold");
    await printed(child, "held");
    child.kill("SIGSTOP"); // stopped: it cannot refresh
    const { lock } = lockPaths(s, "img");
    await utimes(lock, 0, 0);
    assert.equal(await takes(s, "img", 1), false);
    child.kill("SIGKILL");
    await closed(child);
    assert.equal(await takes(s, "img", 1), true);
  });

  it(
    "a pid reused by another process (another start time) does not hold the lock",
    { skip: linux },
    async () => {
      const s = await store();
      const me = ownerRecord();
      await fakeLock(s, "img", { ...me, start: String(Number(me.start) - 1) });
      assert.equal(await takes(s, "img"), true);
    },
  );

  it("a lock of another host or container is stale only when not refreshed for staleMs", async () => {
    const s = await store();
    const now = Date.now() / 1000;
    const other = { pid: 1, host: `not-${hostname()}` };
    await fakeLock(s, "a", other, now);
    assert.equal(await takes(s, "a", 5_000), false, "refreshed just now");
    await fakeLock(s, "b", other, now - 60);
    assert.equal(await takes(s, "b", 5_000), true, "not refreshed for a minute");
    // Same host name, another pid namespace (a container): the pid means nothing here.
    const container = { ...ownerRecord(), pid: 999_999, machine: "another-boot pid:[1]" };
    await fakeLock(s, "c", container, now);
    assert.equal(await takes(s, "c", 5_000), false, "its pid cannot be checked from here");
    await fakeLock(s, "d", container, now - 60);
    assert.equal(await takes(s, "d", 5_000), true);
  });

  it("no owner record (a holder killed before writing it): the refresh time decides", async () => {
    const s = await store();
    const now = Date.now() / 1000;
    await fakeLock(s, "a", undefined, now);
    assert.equal(await takes(s, "a", 5_000), false);
    await fakeLock(s, "b", undefined, now - 60);
    assert.equal(await takes(s, "b", 5_000), true);
  });

  it("a holder refreshes its lock; one whose lock was taken over finds out", async () => {
    const s = await store();
    const { lock } = lockPaths(s, "img");
    await withLock(
      s,
      "img",
      async (held) => {
        await utimes(lock, 0, 0);
        for (let i = 0; i < 50 && (await stat(lock)).mtimeMs === 0; i++) await sleep(100);
        assert.notEqual((await stat(lock)).mtimeMs, 0, "refreshed");
        held.assertHeld();
        // Taken over: removed and made again, maybe with the same inode number.
        await rm(lock, { recursive: true });
        await fakeLock(s, "img", { ...ownerRecord(), pid: 1 });
        assert.throws(
          () => held.assertHeld(),
          /lost the lock .*img\.lock: another process took it over/,
        );
      },
      { staleMs: 1_000 },
    );
    assert.ok(existsSync(lock), "the new holder's lock is left alone");
  });

  it("a waiter is told once, and takes the lock when it is released", async () => {
    const s = await store();
    const child = holder(s, "img", "hold");
    await printed(child, "held");
    let waits = 0;
    const waiting = withLock(s, "img", async () => "mine", { onWait: () => waits++ });
    await sleep(500);
    child.kill("SIGTERM");
    assert.equal(await waiting, "mine");
    assert.equal(waits, 1);
  });
});
