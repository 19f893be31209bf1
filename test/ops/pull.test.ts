import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { lstat, readFile, readdir, writeFile, mkdir } from "node:fs/promises";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { after, before, describe, it } from "node:test";
import { execFileSync } from "node:child_process";
import { pull, pullMany } from "../../src/ops/pull.js";
import { sync } from "../../src/ops/sync.js";
import { AxError, ChecksumError } from "../../src/errors.js";
import { startWorld, type World } from "../helpers/world.js";

const KERNEL = Buffer.alloc(200_000, 7);

async function leftovers(dir: string): Promise<string[]> {
  const names = await readdir(dir).catch(() => [] as string[]);
  const staging = await readdir(join(dir, ".axvisor-image", "staging")).catch(() => [] as string[]);
  return [...names.filter((n) => n.endsWith(".part") || n.endsWith(".part.json")), ...staging];
}

describe("pull (library)", () => {
  let w: World;
  before(async () => {
    w = await startWorld();
  });
  after(() => w.close());

  it("downloads, verifies and extracts in one pass, leaving archive, tree and marker", async () => {
    const img = await w.publish("linux", "0.0.1", [
      { name: "qemu-aarch64", data: KERNEL, mode: 0o755 },
      { name: "rootfs.img", data: "rootfs" },
      { name: "boot/", type: "directory" },
      { name: "boot/sh", type: "symlink", linkname: "/usr/bin/busybox" },
    ]);
    const progress: number[] = [];
    const res = await pull(w.config(), "linux", {
      onProgress: (p) => p.phase === "download" && progress.push(p.received),
    });
    assert.equal(res.path, join(w.store, "linux"));
    assert.equal(res.downloaded, true);
    assert.deepEqual(await readFile(join(res.path, "qemu-aarch64")), KERNEL);
    assert.equal(await readFile(join(res.path, ".archive.sha256"), "utf8"), img.entry.sha256);
    assert.deepEqual(await readFile(join(w.store, "linux.tar.gz")), img.archive);
    assert.deepEqual(await leftovers(w.store), []);
    assert.ok(progress.length > 0 && progress.at(-1) === img.archive.length);
  });

  it("reuses a tree whose marker matches without touching the network; user edits survive", async () => {
    await writeFile(join(w.store, "linux", "edited-by-user"), "keep");
    const before = w.server.requestsFor("/files/linux-0.0.1.tar.gz").length;
    const res = await pull(w.config(), "linux");
    assert.equal(res.downloaded, false);
    assert.equal(res.extracted, false);
    assert.equal(await readFile(join(res.path, "edited-by-user"), "utf8"), "keep");
    assert.equal(w.server.requestsFor("/files/linux-0.0.1.tar.gz").length, before);
  });

  it("extracts from a present verified archive when the tree is missing", async () => {
    execFileSync("rm", ["-rf", join(w.store, "linux")]);
    const before = w.server.requestsFor("/files/linux-0.0.1.tar.gz").length;
    const res = await pull(w.config(), "linux");
    assert.equal(res.downloaded, false);
    assert.equal(res.extracted, true);
    assert.deepEqual(await readFile(join(res.path, "qemu-aarch64")), KERNEL);
    assert.equal(w.server.requestsFor("/files/linux-0.0.1.tar.gz").length, before);
  });

  it("downloads again when the present archive is corrupt", async () => {
    execFileSync("rm", ["-rf", join(w.store, "linux")]);
    await writeFile(join(w.store, "linux.tar.gz"), "corrupt");
    const res = await pull(w.config(), "linux");
    assert.equal(res.downloaded, true);
    assert.deepEqual(await readFile(join(res.path, "rootfs.img"), "utf8"), "rootfs");
  });

  it("fails a bad checksum naming the image and leaves no archive, .part or tree", async () => {
    const bad = await w.publish("broken", "1.0", [{ name: "f", data: "x" }], {
      sha256: "0".repeat(64),
    });
    await sync(w.config());
    await assert.rejects(pull(w.config(), "broken"), (err: unknown) => {
      assert.ok(err instanceof ChecksumError);
      assert.match(err.message, /checksum mismatch for image broken/);
      return true;
    });
    assert.equal(existsSync(join(w.store, "broken.tar.gz")), false);
    assert.equal(existsSync(join(w.store, "broken")), false);
    assert.deepEqual(await leftovers(w.store), []);
    assert.ok(bad.archive.length > 0);
  });

  it("an archive's own .archive.sha256 (here a symlink out of the store) is replaced, never written through", async () => {
    const victim = join(w.root, "victim.txt");
    await writeFile(victim, "precious");
    const img = await w.publish("sneaky", "1.0", [
      { name: "kernel", data: "k" },
      { name: ".archive.sha256", type: "symlink", linkname: victim },
    ]);
    await sync(w.config());
    const res = await pull(w.config(), "sneaky");
    assert.equal(await readFile(victim, "utf8"), "precious");
    const marker = join(res.path, ".archive.sha256");
    assert.ok((await lstat(marker)).isFile());
    assert.equal(await readFile(marker, "utf8"), img.entry.sha256);
  });

  it("a local registry may use file:// images, but only regular files", async () => {
    const archive = join(w.root, "local.tar.gz");
    const img = await w.publish("local", "1.0", [{ name: "k", data: "local kernel" }]);
    await writeFile(archive, img.archive);
    const entry = { ...img.entry, version: "1.0", description: "d", arch: "aarch64" };
    const res = await pull(w.config(), "local", {
      images: [{ ...entry, url: pathToFileURL(archive).href }],
    });
    assert.equal(await readFile(join(res.path, "k"), "utf8"), "local kernel");
    await assert.rejects(
      pull(w.config(), "zero", {
        images: [{ ...entry, name: "zero", url: "file:///dev/zero" }],
      }),
      /file:\/\/\/dev\/zero: not a regular file/,
    );
  });

  it("follows redirects, as release assets do", async () => {
    const img = await w.publish("redir", "1.0", [{ name: "k", data: "kernel" }]);
    w.server.setRedirect("/release/redir.tar.gz", w.server.url(img.path, "localhost"), 302);
    const entry = { ...img.entry, version: "1.0", description: "d", arch: "aarch64" };
    const res = await pull(w.config(), "redir", {
      images: [{ ...entry, url: w.server.url("/release/redir.tar.gz") }],
    });
    assert.equal(await readFile(join(res.path, "k"), "utf8"), "kernel");
    assert.equal(w.server.requestsFor("/release/redir.tar.gz").length, 1);
  });

  it("resolves NAME to the latest released_at and NAME:VERSION exactly", async () => {
    await w.publish("multi", "1.0", [{ name: "v", data: "one" }], {
      released_at: "2025-01-01T00:00:00Z",
    });
    await w.publish("multi", "2.0", [{ name: "v", data: "two" }], {
      released_at: "2026-01-01T00:00:00Z",
    });
    await w.publish("multi", "0.5", [{ name: "v", data: "half" }]);
    const cfg = w.config();
    await sync(cfg);
    const latest = await pull(cfg, "multi");
    assert.equal(await readFile(join(latest.path, "v"), "utf8"), "two");
    const exact = await pull(cfg, "multi:1.0");
    assert.equal(exact.path, join(w.store, "multi-1.0"));
    assert.ok(existsSync(join(w.store, "multi-1.0.tar.gz")));
    assert.equal(await readFile(join(exact.path, "v"), "utf8"), "one");
  });

  it("detects the format by content for .tgz, .tar.xz, .txz and .tar names", async () => {
    await mkdir(join(w.root, "src"), { recursive: true });
    await writeFile(join(w.root, "src", "hello"), "hello");
    for (const [ext, flag] of [
      [".tgz", "-z"],
      [".tar.xz", "-J"],
      [".txz", "-J"],
      [".tar", ""],
      [".tar.zst", "--zstd"],
    ] as const) {
      const archive = execFileSync("tar", [
        "-c",
        ...(flag ? [flag] : []),
        "-C",
        join(w.root, "src"),
        "hello",
      ]);
      const name = `fmt${ext.replaceAll(".", "_")}`;
      await w.publish(name, "1", [], { ext, archive });
      await sync(w.config());
      const res = await pull(w.config(), name);
      assert.equal(await readFile(join(res.path, "hello"), "utf8"), "hello", ext);
      assert.ok(existsSync(join(w.store, name + ext)), `${name}${ext} kept`);
    }
  });

  it("pulls into -o DIR, and --no-extract leaves only the archive", async () => {
    const out = join(w.root, "out");
    const res = await pull(w.config(), "linux", { outputDir: out });
    assert.equal(res.path, join(out, "linux"));
    assert.ok(existsSync(join(out, "linux.tar.gz")));
    const only = await pull(w.config(), "linux:0.0.1", {
      outputDir: join(w.root, "out2"),
      extract: false,
    });
    assert.equal(only.path, join(w.root, "out2", "linux-0.0.1.tar.gz"));
    assert.equal(existsSync(join(w.root, "out2", "linux-0.0.1")), false);
  });

  it("a refused archive fails naming the image and the member, leaving nothing", async () => {
    await w.publish("evil", "1.0", [{ name: "../escape", data: "x" }]);
    await sync(w.config());
    await assert.rejects(pull(w.config(), "evil"), /^AxError: evil: .*"\.\.\/escape"/);
    assert.equal(existsSync(join(w.store, "evil")), false);
    assert.equal(existsSync(join(w.store, "evil.tar.gz")), false);
    assert.equal(existsSync(join(w.root, "escape")), false);
    assert.deepEqual(await leftovers(w.store), []);
  });

  it("fails an unknown image naming it, with a hint to ls", async () => {
    await assert.rejects(pull(w.config(), "no_such_image"), (err: unknown) => {
      assert.ok(err instanceof AxError);
      assert.match(err.message, /image not found: no_such_image/);
      assert.match(err.hint ?? "", /ls/);
      return true;
    });
  });

  it("pullMany keeps the order of its arguments and reports each failure", async () => {
    const res = await pullMany(w.config(), ["multi:1.0", "nope", "linux"]);
    assert.equal(res[0]?.status, "fulfilled");
    assert.equal(res[1]?.status, "rejected");
    assert.equal(res[2]?.status === "fulfilled" && res[2].value.path, join(w.store, "linux"));
    const locks = await readdir(join(w.store, ".axvisor-image", "locks"));
    assert.deepEqual(locks, [], "every lock taken concurrently in one process is released");
  });
});
