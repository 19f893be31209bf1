/**
 * `pull` of archives as publishers make them, through the CLI: GNU tar's `tar -cSJf` (old GNU
 * sparse members in an xz archive), an archive with absolute member names (refused, saying why),
 * and one whose end-of-archive marker is a lone zero block followed by junk.
 */

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { after, before, describe, it } from "node:test";
import { member, tar } from "../helpers/tar.js";
import { startWorld, type World } from "../helpers/world.js";

const MiB = 1024 * 1024;

describe("pull: archives as publishers make them (CLI)", () => {
  let w: World;
  before(async () => {
    w = await startWorld();
  });
  after(() => w.close());

  it("pulls a `tar -cSJf rootfs.img.tar.xz rootfs.img` archive: old GNU sparse, holes kept", async (t) => {
    if (spawnSync("tar", ["--version"]).status !== 0) return t.skip("GNU tar is not installed");
    if (spawnSync("xz", ["--version"]).status !== 0) return t.skip("xz is not installed");
    const src = join(w.root, "rootfs-src");
    fs.mkdirSync(src);
    const image = join(src, "rootfs.img");
    const fd = fs.openSync(image, "w");
    fs.ftruncateSync(fd, 16 * MiB);
    for (let i = 0; i < 8; i++)
      fs.writeSync(fd, Buffer.alloc(5000, i + 1), 0, 5000, i * 2 * MiB + 1000);
    fs.closeSync(fd);
    const made = spawnSync("tar", ["-cSJf", "-", "-C", src, "rootfs.img"], { maxBuffer: 64 * MiB });
    assert.equal(made.status, 0, made.stderr.toString());
    const plain = spawnSync("xz", ["-dc"], { input: made.stdout, maxBuffer: 64 * MiB }).stdout;
    assert.equal(String.fromCharCode(plain[156] ?? 0), "S", "an old GNU sparse member");
    await w.publish("rootfs-aarch64-alpine.img", "0.0.1", [], {
      ext: ".tar.xz",
      archive: made.stdout,
    });

    assert.equal((await w.cli(["sync"])).code, 0);
    const run = await w.cli(["pull", "rootfs-aarch64-alpine.img"]);
    assert.equal(run.code, 0, run.stderr);
    const pulled = join(w.store, "rootfs-aarch64-alpine.img", "rootfs.img");
    assert.ok(fs.readFileSync(pulled).equals(fs.readFileSync(image)));
    const stat = fs.statSync(pulled);
    assert.equal(stat.size, 16 * MiB);
    assert.ok(stat.blocks * 512 < MiB, `holes kept: ${stat.blocks} blocks allocated`);
  });

  it("refuses an archive of absolute member names, naming the member, why, and what to do", async () => {
    await w.publish("absolute", "0.0.1", [], {
      archive: gzipSync(tar(member({ name: "/rootfs.img", data: "x" }))),
    });
    assert.equal((await w.cli(["sync"])).code, 0);
    const run = await w.cli(["pull", "absolute"]);
    assert.equal(run.code, 1);
    assert.match(
      run.stderr,
      /^error: .*refused archive member "\/rootfs\.img": absolute path \(GNU tar would strip the leading "\/"; member names are never rewritten here\)$/m,
    );
    assert.match(run.stderr, /^hint: the archive was made with absolute member names \(tar -P\)/m);
    assert.equal(fs.existsSync(join(w.store, "absolute")), false);
  });

  it("stops at a lone zero block, as GNU tar does, and says what it ignored", async () => {
    const archive = Buffer.concat([
      member({ name: "kernel", data: "kernel" }),
      Buffer.alloc(512),
      Buffer.from("junk".repeat(128)),
      member({ name: "hidden", data: "never extracted" }),
      Buffer.alloc(1024),
    ]);
    await w.publish("lone-zero", "0.0.1", [], { archive: gzipSync(archive) });
    assert.equal((await w.cli(["sync"])).code, 0);
    const run = await w.cli(["pull", "lone-zero"]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stderr, /^warning: .*a lone zero block at byte 1024 ends the archive/m);
    assert.deepEqual(fs.readdirSync(join(w.store, "lone-zero")).sort(), [
      ".archive.sha256",
      "kernel",
    ]);
  });
});
