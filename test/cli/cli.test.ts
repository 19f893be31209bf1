import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdir, readFile, readdir, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { runCli, cliEnv } from "../helpers/images.js";
import { startWorld, type World } from "../helpers/world.js";

describe("CLI", () => {
  let w: World;
  before(async () => {
    w = await startWorld();
    await w.publish("qemu_aarch64_linux", "0.0.25", [{ name: "qemu-aarch64", data: "old" }], {
      released_at: "2025-10-01T00:00:00Z",
    });
    await w.publish("qemu_aarch64_linux", "0.0.26", [{ name: "qemu-aarch64", data: "new" }], {
      released_at: "2026-04-10T02:35:51Z",
    });
    await w.publish("phytiumpi-freertos", "0.0.26", [{ name: "freertos.bin", data: "rtos" }], {
      released_at: "2026-04-10T02:36:10Z",
    });
  });
  after(() => w.close());

  it("pull prints one absolute path per image on stdout, progress on stderr", async () => {
    const run = await w.cli(["pull", "qemu_aarch64_linux", "phytiumpi-freertos"]);
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(run.stdout.trim().split("\n"), [
      join(w.store, "qemu_aarch64_linux"),
      join(w.store, "phytiumpi-freertos"),
    ]);
    assert.equal(
      await readFile(join(w.store, "qemu_aarch64_linux", "qemu-aarch64"), "utf8"),
      "new",
    );
    assert.doesNotMatch(run.stderr, /\r/, "no carriage returns when stderr is not a terminal");
    assert.match(run.stderr, /qemu_aarch64_linux/);
  });

  it("download is an alias of pull; --no-extract prints the archive path", async () => {
    const run = await w.cli(["download", "qemu_aarch64_linux:0.0.25", "--no-extract"]);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout.trim(), join(w.store, "qemu_aarch64_linux-0.0.25.tar.gz"));
    assert.equal(existsSync(join(w.store, "qemu_aarch64_linux-0.0.25")), false);
  });

  it("-o DIR puts the image there; -q prints only results", async () => {
    const out = join(w.root, "images");
    const run = await w.cli(["-q", "pull", "phytiumpi-freertos", "-o", out]);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout.trim(), join(out, "phytiumpi-freertos"));
    assert.equal(run.stderr, "");
  });

  it("an unknown image fails with exit 1, naming it and suggesting ls", async () => {
    const run = await w.cli(["pull", "qemu_aarch64_linx"]);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /^error: image not found: qemu_aarch64_linx$/m);
    assert.match(run.stderr, /^hint: .*qemu_aarch64_linux.*axvisor-image ls/m);
    assert.doesNotMatch(run.stderr, /at .*\.js:\d+/, "no stack trace");
    assert.equal(run.stdout, "");
  });

  it("ls shows one row per name with a version count; -v one per version", async () => {
    const run = await w.cli(["ls"]);
    assert.equal(run.code, 0, run.stderr);
    const lines = run.stdout.trim().split("\n");
    assert.match(lines[0]!, /^Name\s+Version\s+Architecture\s+Pulled\s+Description$/);
    assert.equal(lines.length, 3);
    assert.match(run.stdout, /qemu_aarch64_linux\s+0\.0\.26 \(2 versions\)\s+aarch64/);
    const verbose = await w.cli(["ls", "-v"]);
    assert.equal(verbose.stdout.trim().split("\n").length, 4);
    assert.match(verbose.stdout, /qemu_aarch64_linux\s+0\.0\.25/);
  });

  it("ls PATTERN is a regex on the name, or a substring when not a regex", async () => {
    const regex = await w.cli(["ls", "^phytium"]);
    assert.match(regex.stdout, /phytiumpi-freertos/);
    assert.doesNotMatch(regex.stdout, /qemu/);
    const substring = await w.cli(["ls", "qemu_aarch64_linux("]);
    assert.equal(substring.code, 0);
    assert.doesNotMatch(substring.stdout, /Name/);
    const plain = await w.cli(["ls", "aarch64_l"]);
    assert.match(plain.stdout, /qemu_aarch64_linux/);
  });

  it("rm removes archive and tree; rm of an absent image is a notice, exit 0", async () => {
    const run = await w.cli(["rm", "phytiumpi-freertos"]);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(existsSync(join(w.store, "phytiumpi-freertos")), false);
    assert.equal(existsSync(join(w.store, "phytiumpi-freertos.tar.gz")), false);
    assert.ok(existsSync(join(w.store, "qemu_aarch64_linux")), "other images kept");
    const again = await w.cli(["rm", "phytiumpi-freertos", "never-pulled:1.0"]);
    assert.equal(again.code, 0, again.stderr);
    assert.equal(
      again.stderr,
      `phytiumpi-freertos: not in the store ${w.store}; nothing to remove\n` +
        `never-pulled:1.0: not in the store ${w.store}; nothing to remove\n`,
    );
    assert.equal(again.stdout, "");
  });

  it("rm leaves alone a folder of an image's name that axvisor-image did not make (no marker)", async () => {
    const mine = join(w.store, "phytiumpi-freertos");
    await mkdir(mine, { recursive: true });
    await writeFile(join(mine, "notes.txt"), "my work");
    const run = await w.cli(["rm", "phytiumpi-freertos"]);
    assert.equal(run.code, 1, run.stderr);
    assert.match(
      run.stderr,
      new RegExp(
        `^warning: left ${mine} alone: no \\.archive\\.sha256 in it shows axvisor-image made it$`,
        "m",
      ),
    );
    assert.match(run.stderr, /^error: rm left 1 item alone$/m);
    assert.equal(await readFile(join(mine, "notes.txt"), "utf8"), "my work");
  });

  it("sync writes images.toml sorted by (name, version) and .last_sync", async () => {
    const run = await w.cli(["sync"]);
    assert.equal(run.code, 0, run.stderr);
    const text = await readFile(join(w.store, "images.toml"), "utf8");
    const names = [...text.matchAll(/^name = "(.*)"$/gm)].map((m) => m[1]);
    const versions = [...text.matchAll(/^version = "(.*)"$/gm)].map((m) => m[1]);
    assert.deepEqual(names, ["phytiumpi-freertos", "qemu_aarch64_linux", "qemu_aarch64_linux"]);
    assert.deepEqual(versions, ["0.0.26", "0.0.25", "0.0.26"]);
    assert.doesNotMatch(text, /includes/);
    const last = Number(await readFile(join(w.store, ".last_sync"), "utf8"));
    assert.ok(Math.abs(last - Date.now() / 1000) < 60);
  });

  it("bad usage exits 2 with one error line", async () => {
    for (const args of [
      ["pull"],
      ["pull", "name:"],
      ["pull", ":1.0"],
      ["--auto-sync-threshold", "-5", "ls"],
      ["--auto-sync-threshold", "soon", "ls"],
      ["--frobnicate", "ls"],
      ["frobnicate"],
      ["--mirror", "no-equals-sign", "ls"],
      ["pull", "--stall-timeout", "0", "x"],
    ]) {
      const run = await w.cli(args);
      assert.equal(run.code, 2, `${args.join(" ")}: ${run.stderr}`);
      assert.match(run.stderr, /^error: /m, args.join(" "));
    }
  });

  it("an output directory that is a file is a usage error naming it", async () => {
    const file = join(w.root, "a-file");
    await writeFile(file, "x");
    const run = await w.cli(["pull", "qemu_aarch64_linux", "-o", file]);
    assert.equal(run.code, 2, run.stderr);
    assert.match(run.stderr, new RegExp(`error: output directory ${file} is not a directory`));
  });

  it("--help works on every command, --version prints the version", async () => {
    for (const cmd of [
      [],
      ["ls"],
      ["pull"],
      ["download"],
      ["rm"],
      ["sync"],
      ["config"],
      ["defconfig"],
    ]) {
      const run = await runCli([...cmd, "--help"]);
      assert.equal(run.code, 0, cmd.join(" "));
      assert.match(run.stdout, /Usage: axvisor-image/);
    }
    const version = await runCli(["--version"]);
    assert.match(version.stdout.trim(), /^\d+\.\d+\.\d+$/);
  });

  it("config shows each value and its origin: flag > env > .image.toml > default", async () => {
    const project = join(w.root, "project");
    const nested = join(project, "a", "b");
    await mkdir(nested, { recursive: true });
    await writeFile(
      join(project, ".image.toml"),
      'local_storage = "store-from-file"\nregistry = "https://example.invalid/r.toml"\nauto_sync = false\nauto_sync_threshold = 60\n',
    );
    const run = await runCli(["--auto-sync-threshold", "99", "config"], {
      cwd: nested,
      env: cliEnv({ AXVISOR_IMAGE_LOCAL_STORAGE: "/tmp/from-env" }),
    });
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /^local_storage = "\/tmp\/from-env"\s+# env$/m);
    assert.match(
      run.stdout,
      /^registry = "https:\/\/example\.invalid\/r\.toml"\s+# file .*\.image\.toml$/m,
    );
    assert.match(run.stdout, /^auto_sync = false\s+# file/m);
    assert.match(run.stdout, /^auto_sync_threshold = 99\s+# flag$/m);
    assert.match(run.stdout, /^fallback_registry = ".*v0\.0\.25\.toml"\s+# default$/m);
    const fileOnly = await runCli(["config"], { cwd: nested });
    assert.match(fileOnly.stdout, new RegExp(`^local_storage = "${project}/store-from-file"`, "m"));
    const other = join(w.root, "other.toml");
    await writeFile(other, "auto_sync_threshold = 5\n");
    const explicit = await runCli(["-c", other, "config"], { cwd: nested });
    assert.match(explicit.stdout, /^auto_sync_threshold = 5\s+# file .*other\.toml$/m);
    const broken = join(w.root, "broken.toml");
    await writeFile(broken, "auto_sync = maybe\n");
    const bad = await runCli(["-c", broken, "config"]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /^error: .*broken\.toml:1/m);
  });

  it("defconfig writes the default .image.toml and refuses to overwrite it", async () => {
    const dir = join(w.root, "fresh");
    await mkdir(dir);
    const run = await runCli(["defconfig"], { cwd: dir });
    assert.equal(run.code, 0, run.stderr);
    const text = await readFile(join(dir, ".image.toml"), "utf8");
    assert.match(text, /^auto_sync_threshold = 604800$/m);
    const config = await runCli(["config"], { cwd: dir });
    assert.match(config.stdout, /^auto_sync_threshold = 604800\s+# file/m);
    const again = await runCli(["defconfig"], { cwd: dir });
    assert.equal(again.code, 2);
    assert.match(again.stderr, /already exists/);
    assert.deepEqual(await readdir(dir), [".image.toml"]);
  });
});

describe("pull -o DIR", () => {
  let w: World;
  before(async () => {
    w = await startWorld();
    await w.publish("qemu_aarch64_linux", "0.0.25", [{ name: "qemu-aarch64", data: "old" }]);
  });
  after(() => w.close());

  it("-o DIR reuses the store's verified archive and leaves only the image in DIR", async () => {
    const archivePath = "/files/qemu_aarch64_linux-0.0.25.tar.gz";
    const pulled = await w.cli(["-q", "pull", "qemu_aarch64_linux:0.0.25"]);
    assert.equal(pulled.code, 0, pulled.stderr);
    const requests = w.server.requestsFor(archivePath).length;
    const out = join(w.root, "export");
    const run = await w.cli(["pull", "qemu_aarch64_linux:0.0.25", "-o", out]);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout, `${join(out, "qemu_aarch64_linux-0.0.25")}\n`);
    assert.equal(w.server.requestsFor(archivePath).length, requests, "not downloaded again");
    assert.deepEqual((await readdir(out)).sort(), [
      "qemu_aarch64_linux-0.0.25",
      "qemu_aarch64_linux-0.0.25.tar.gz",
    ]);
    assert.equal(
      await readFile(join(out, "qemu_aarch64_linux-0.0.25", "qemu-aarch64"), "utf8"),
      "old",
    );
    const [inStore, inOut] = await Promise.all(
      [w.store, out].map((d) => stat(join(d, "qemu_aarch64_linux-0.0.25.tar.gz"))),
    );
    assert.equal(inOut!.ino, inStore!.ino, "a hard link to the store's archive");
  });

  it("a cold pull -o DIR downloads into the store once; DIR gets only the image", async () => {
    const img = await w.publish("exported", "1.0", [{ name: "kernel", data: "k" }]);
    assert.equal((await w.cli(["-q", "sync"])).code, 0);
    const fresh = join(w.root, "export2");
    const cold = await w.cli(["pull", "exported", "-o", fresh, "--no-extract"]);
    assert.equal(cold.code, 0, cold.stderr);
    assert.equal(cold.stdout, `${join(fresh, "exported.tar.gz")}\n`);
    assert.deepEqual(await readdir(fresh), ["exported.tar.gz"]);
    assert.ok(existsSync(join(w.store, "exported.tar.gz")), "the store keeps the archive");
    assert.equal(existsSync(join(w.store, "exported")), false, "and no tree");
    const again = await w.cli(["-q", "pull", "exported", "-o", join(w.root, "export3")]);
    assert.equal(again.code, 0, again.stderr);
    assert.equal(w.server.requestsFor(img.path).length, 1, "the store's copy served the second");
    assert.deepEqual((await readdir(join(w.root, "export3"))).sort(), [
      "exported",
      "exported.tar.gz",
    ]);
  });

  it("with -E DIR2 too, -o DIR puts the image in DIR: nothing goes to the extract directory", async () => {
    await w.publish("extracted", "1.0", [{ name: "kernel", data: "e" }]);
    assert.equal((await w.cli(["-q", "sync"])).code, 0);
    const [extract, out] = [join(w.root, "trees"), join(w.root, "export4")];
    const run = await w.cli(["-E", extract, "pull", "extracted", "-o", out]);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout, `${join(out, "extracted")}\n`);
    assert.deepEqual((await readdir(out)).sort(), ["extracted", "extracted.tar.gz"]);
    assert.equal(await readFile(join(out, "extracted", "kernel"), "utf8"), "e");
    assert.ok(existsSync(join(w.store, "extracted.tar.gz")), "the store keeps the archive");
    assert.deepEqual(
      await readdir(extract).catch(() => []),
      [],
      "the extract directory is untouched",
    );
    // Without -o, the tree goes to the extract directory, and `path` finds it there.
    const own = await w.cli(["-q", "-E", extract, "pull", "extracted"]);
    assert.equal(own.stdout, `${join(extract, "extracted")}\n`, own.stderr);
    const path = await w.cli(["-E", extract, "path", "extracted"]);
    assert.equal(path.stdout, `${join(extract, "extracted")}\n`, path.stderr);
  });
});

describe("a local registry file (-R ./my.toml)", () => {
  let w: World;
  before(async () => {
    w = await startWorld();
    w.server.setFile("/fallback.toml", '[[images]]\nname = "from_fallback"\n');
  });
  after(() => w.close());

  it("with a syntax error: one error naming file:line, no fallback, no warning", async () => {
    await writeFile(join(w.root, "my.toml"), '[[images]]\nname = "a"\nversion = 1.0.0\n');
    const env = cliEnv({ AXVISOR_REGISTRY_FALLBACK_URL: w.server.url("/fallback.toml") });
    for (const command of [["sync"], ["ls"]]) {
      const run = await runCli(["-S", w.store, "-R", "./my.toml", ...command], {
        cwd: w.root,
        env,
      });
      assert.equal(run.code, 1, run.stderr);
      assert.match(run.stderr, new RegExp(`^error: ${join(w.root, "my.toml")}:3:\\d+: `, "m"));
      assert.equal(run.stderr.split("\n").filter((l) => l.startsWith("error: ")).length, 1);
      assert.doesNotMatch(run.stderr, /warning|fallback/, run.stderr);
    }
    assert.equal(w.server.requestsFor("/fallback.toml").length, 0, "the fallback is not fetched");
  });
});
