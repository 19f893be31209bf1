/**
 * The TGOS registry by name, several registries at once, and axbuild's `image` options, driven as
 * a subprocess against `python3 -m http.server` serving the real tgosimages and axvisor-guest
 * registry files (URLs rewritten) and stand-in archives made as tgosimages makes them.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { mkdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { ImageJson, PullJson, StoreJson } from "../../src/cli/json.js";
import { cliEnv, makeTarGz, registryToml, runCli, sha256, tempDir } from "../helpers/images.js";
import { NO_MINISIGN, minisignKeyPair } from "../helpers/minisign.js";
import { clashingQemu, TGOS_REGISTRY_DIR, TGOS_VERSION, useTgosSite } from "../helpers/tgos.js";

const ALPINE = "rootfs-aarch64-alpine.img";

describe("TGOS images, several registries and axbuild's options", () => {
  const t = useTgosSite();
  const cli = (args: string[], env: Record<string, string> = {}, cwd = t.dir) =>
    runCli(args, {
      cwd,
      env: cliEnv({ AXVISOR_IMAGE_REGISTRY_BASE_URL: t.site.base, ...env }),
    });
  const tgos = (args: string[], env: Record<string, string> = {}) =>
    cli(["-S", t.store, "-R", "tgos", ...args], env);

  it("-R tgos: sync and ls read tgosimages' files; ls --json names the registry", async () => {
    const synced = await tgos(["sync"]);
    assert.equal(synced.code, 0, synced.stderr);
    const run = await tgos(["ls", "--json"]);
    assert.equal(run.code, 0, run.stderr);
    const rows = JSON.parse(run.stdout) as ImageJson[];
    const alpine = rows.find((r) => r.name === ALPINE);
    assert.equal(alpine?.version, TGOS_VERSION);
    assert.equal(alpine?.registry, "tgos");
    assert.ok(rows.some((r) => r.name === "orangepi-5-plus.img"));
    assert.ok(rows.some((r) => r.name === "initramfs-aarch64-busybox.cpio.gz"));
    assert.ok(rows.every((r) => r.registry === "tgos"));
    const plain = await tgos(["ls"]);
    assert.match(
      plain.stdout,
      /^Name +Version +Architecture +Pulled +Description\n/,
      "one registry",
    );
  });

  it(
    "[[trust]] pins tgos by its name: its unsigned files are refused",
    { skip: NO_MINISIGN },
    async () => {
      const keys = await minisignKeyPair(t.dir, "tgos-pin");
      const config = join(t.dir, "pinned.toml");
      writeFileSync(
        config,
        `registry = "tgos"\n[[trust]]\nregistry = "tgos"\nkeys = ["${keys.publicKey}"]\n`,
      );
      const run = await cli(["-c", config, "-S", join(t.dir, "pinned-store"), "sync"]);
      assert.equal(run.code, 1, run.stderr);
      assert.match(run.stderr, /^error: sync refused: .*default\.toml/m);
      // Its URL written out, as axbuild's .image.toml has it, is the same registry: pinned too.
      const url = `${t.site.base}rcore-os/tgosimages/refs/heads/main/registry/default.toml`;
      writeFileSync(
        config,
        `registry = "${url}"\n[[trust]]\nregistry = "tgos"\nkeys = ["${keys.publicKey}"]\n`,
      );
      const byUrl = await cli(["-c", config, "-S", join(t.dir, "pinned-url-store"), "sync"]);
      assert.equal(byUrl.code, 1, byUrl.stderr);
      assert.match(byUrl.stderr, /^error: sync refused: .*default\.toml: not signed/m);
    },
  );

  it("pull --arch pulls that architecture's default rootfs; --file and path --file give the .img", async () => {
    const pulled = await tgos(["pull", "--arch", "aarch64", "--file"]);
    assert.equal(pulled.code, 0, pulled.stderr);
    const file = pulled.stdout.trim();
    assert.equal(file, join(t.store, ALPINE, ALPINE));
    assert.ok(readFileSync(file).equals(t.site.standIns.get(ALPINE)!.file!), "the .img as packed");
    const tree = await tgos(["pull", "--arch", "aarch64"]);
    assert.equal(tree.stdout.trim(), join(t.store, ALPINE), "without --file: the tree, as before");
    const path = await tgos(["path", "--file", ALPINE]);
    assert.equal(path.code, 0, path.stderr);
    assert.equal(path.stdout.trim(), file);
    // What axbuild's `image check` prints for it.
    const expected = sha256(t.site.standIns.get(ALPINE)!.file!);
    const check = await cli(["check", file, "--sha256", expected]);
    assert.equal(check.code, 0, check.stderr);
    assert.equal(check.stdout, `${expected}  ${file}\n`);
  });

  it("a rootfs packed with tar -cSJf (old GNU sparse) comes back with its holes", async () => {
    const pulled = await tgos(["pull", "--arch", "x86_64", "--file"]);
    assert.equal(pulled.code, 0, pulled.stderr);
    const file = pulled.stdout.trim();
    const original = t.site.standIns.get("rootfs-x86_64-alpine.img")!.file!;
    assert.ok(readFileSync(file).equals(original));
    const st = statSync(file);
    assert.ok(st.blocks * 512 < st.size / 2, `sparse: ${st.blocks * 512} of ${st.size} bytes`);
  });

  it("aliases with --arch; pull --json has the file; misuse is one clear error", async () => {
    const run = await tgos(["pull", "--json", "--arch", "aarch64", "busybox"]);
    assert.equal(run.code, 0, run.stderr);
    const [result] = JSON.parse(run.stdout) as PullJson[];
    const name = "rootfs-aarch64-busybox.img";
    assert.equal(result!.image, "busybox");
    assert.equal(result!.name, name);
    assert.equal(result!.file, join(t.store, name, name));
    assert.equal(result!.registry, "tgos");

    const bare = await tgos(["pull", "alpine"]);
    assert.equal(bare.code, 1);
    assert.match(bare.stderr, /^error: image not found: alpine$/m);
    assert.match(bare.stderr, /^hint: alpine is a rootfs alias: give the architecture.*--arch/m);
    const arm64 = await tgos(["pull", "--arch", "arm64"]);
    assert.equal(arm64.code, 2);
    assert.match(arm64.stderr, /^error: no managed rootfs image for architecture "arm64"$/m);
    const both = await tgos(["pull", "--arch", "aarch64", "qemu-aarch64"]);
    assert.equal(both.code, 2);
    assert.match(both.stderr, /^error: --arch takes a rootfs alias or no image/m);
    const nothing = await tgos(["pull"]);
    assert.equal(nothing.code, 2);
    assert.match(nothing.stderr, /^error: pull needs an image name, or --arch ARCH$/m);
    const archive = await tgos(["pull", "--no-extract", "--file", ALPINE]);
    assert.equal(archive.code, 2);
    // debian has no loongarch64 build in tgosimages: the expanded name is not found.
    const debian = await tgos(["pull", "--arch", "loongarch64", "debian"]);
    assert.equal(debian.code, 1);
    assert.match(debian.stderr, /^error: image not found: rootfs-loongarch64-debian\.img$/m);
  });

  it("bundles and other single-file images: trees, files, and --file refused for a bundle", async () => {
    const run = await tgos([
      "pull",
      "qemu-aarch64",
      "orangepi-5-plus.img",
      "initramfs-aarch64-busybox.cpio.gz",
    ]);
    assert.equal(run.code, 0, run.stderr);
    const bundle = join(t.store, "qemu-aarch64");
    assert.equal(readFileSync(join(bundle, "linux", "Image"), "utf8"), "stand-in kernel\n");
    assert.equal(
      readFileSync(join(bundle, "arceos", "helloworld.bin"), "utf8"),
      "stand-in arceos\n",
    );
    const board = await tgos(["path", "--file", "orangepi-5-plus.img"]);
    assert.equal(board.stdout.trim(), join(t.store, "orangepi-5-plus.img", "orangepi-5-plus.img"));
    const noFile = await tgos(["path", "--file", "qemu-aarch64"]);
    assert.equal(noFile.code, 1);
    assert.match(noFile.stderr, /^error: image qemu-aarch64 has no file named qemu-aarch64/m);
    assert.match(noFile.stderr, /^hint: it is not a single-file image: its tree is /m);
    assert.ok(existsSync(join(t.store, "qemu-aarch64.tar.xz")), "archive named by its real format");
  });

  it("--file never prints a link an archive put where the image file would be", async () => {
    const archive = await makeTarGz([
      { name: "evil.img", type: "symlink", linkname: "/etc/passwd" },
      { name: "other", data: "x" },
    ]);
    t.site.put("lab/evil.img.tar.gz", archive);
    const registry = join(t.dir, "evil.toml");
    const url = `${t.site.base}lab/evil.img.tar.gz`;
    writeFileSync(registry, registryToml([{ name: "evil.img", url, sha256: sha256(archive) }]));
    const run = await cli(["-S", t.store, "-R", registry, "pull", "--file", "evil.img"]);
    assert.equal(run.code, 1);
    assert.equal(run.stdout, "");
    assert.match(run.stderr, /^error: image evil\.img has no file named evil\.img at the top/m);
    const path = await cli(["-S", t.store, "-R", registry, "path", "--file", "evil.img"]);
    assert.equal(path.code, 1);
    assert.equal(path.stdout, "");
  });

  it("info, verify, du, rm and prune on tgosimages' images", async () => {
    assert.equal((await tgos(["pull", ALPINE, "qemu-aarch64"])).code, 0);
    const info = await tgos(["info", ALPINE]);
    assert.equal(info.code, 0, info.stderr);
    assert.match(info.stdout, /^ {2}registry +tgos \(.*\/registry\/v0\.0\.14\.toml\)$/m);
    const verify = await tgos(["verify"]);
    assert.equal(verify.code, 0, verify.stderr + verify.stdout);
    const du = await tgos(["du", "--json"]);
    assert.equal(du.code, 0, du.stderr);
    assert.match(du.stdout, /rootfs-aarch64-alpine\.img/);
    const rm1 = await tgos(["rm", ALPINE]);
    assert.equal(rm1.code, 0, rm1.stderr);
    assert.ok(!existsSync(join(t.store, ALPINE)));
  });

  it("a versioned file of tgos listed as a second registry: both versions, and prune --keep 1", async () => {
    const older = `${t.site.base}${TGOS_REGISTRY_DIR}/v0.0.13.toml`;
    writeFileSync(
      join(t.dir, ".image.toml"),
      `local_storage = ${JSON.stringify(t.store)}\nregistries = ["tgos", ${JSON.stringify(older)}]\n`,
    );
    const ls = await cli(["ls", "-v", "--json", "^qemu-aarch64$"]);
    const versions = JSON.parse(ls.stdout) as ImageJson[];
    assert.deepEqual(
      versions.map((r) => [r.version, r.registry]),
      [
        ["0.0.14", "tgos"],
        ["0.0.13", older],
      ],
    );
    const pulled = await cli(["pull", "qemu-aarch64", "qemu-aarch64:0.0.13"]);
    assert.equal(pulled.code, 0, pulled.stderr);
    assert.ok(existsSync(join(t.store, "qemu-aarch64-0.0.13", "linux", "Image")));
    const prune = await cli(["prune", "--keep", "1"]);
    assert.equal(prune.code, 0, prune.stderr);
    assert.ok(!existsSync(join(t.store, "qemu-aarch64-0.0.13")), "the older version is removed");
    assert.ok(existsSync(join(t.store, "qemu-aarch64", "linux", "Image")), "the newest is kept");
  });

  it("-D/-E and TGOS_IMAGE_DOWNLOAD_DIR/TGOS_IMAGE_EXTRACT_DIR: archives and trees apart", async () => {
    const downloads = join(t.dir, "downloads");
    const extracted = join(t.dir, "extracted");
    await rm(downloads, { recursive: true, force: true });
    await rm(extracted, { recursive: true, force: true });
    // Flags after the subcommand, as axbuild's global options are.
    const flags = await cli([
      "-R",
      "tgos",
      "pull",
      ALPINE,
      "--file",
      "-D",
      downloads,
      "-E",
      extracted,
    ]);
    assert.equal(flags.code, 0, flags.stderr);
    assert.equal(flags.stdout.trim(), join(extracted, ALPINE, ALPINE));
    assert.ok(existsSync(join(downloads, `${ALPINE}.tar.xz`)));
    assert.ok(existsSync(join(downloads, "images.toml")));
    assert.ok(!existsSync(join(downloads, ALPINE)), "no tree in the download directory");

    const other = join(t.dir, "env-extracted");
    const env = await cli(["-R", "tgos", "path", "--file", ALPINE], {
      TGOS_IMAGE_DOWNLOAD_DIR: downloads,
      TGOS_IMAGE_EXTRACT_DIR: extracted,
    });
    assert.equal(env.code, 0, env.stderr);
    assert.equal(env.stdout.trim(), join(extracted, ALPINE, ALPINE));
    const storage = await cli(["-R", "tgos", "ls", "--json", ALPINE], {
      TGOS_IMAGE_LOCAL_STORAGE: downloads,
      TGOS_IMAGE_EXTRACT_DIR: other,
    });
    const [row] = JSON.parse(storage.stdout) as ImageJson[];
    assert.equal(row!.archive, join(downloads, `${ALPINE}.tar.xz`));
    assert.equal(row!.tree, null, "its tree is in the other extract directory");
    const blank = await cli(["-S", t.store, "-R", "tgos", "config"], {
      TGOS_IMAGE_EXTRACT_DIR: "  ",
    });
    assert.doesNotMatch(blank.stdout, /^extract_dir = /m, "a blank value is ignored, as axbuild");

    // verify, du and rm know both directories.
    const both = ["-R", "tgos", "-D", downloads, "-E", extracted];
    const verify = await cli([...both, "verify"]);
    assert.equal(verify.code, 0, verify.stderr + verify.stdout);
    const du = JSON.parse((await cli([...both, "du", "--json"])).stdout) as StoreJson;
    assert.equal(du.extract_dir, extracted);
    assert.deepEqual(
      du.images.map((i) => [i.image, i.tree]),
      [[ALPINE, join(extracted, ALPINE)]],
    );
    const removed = await cli([...both, "rm", ALPINE]);
    assert.equal(removed.code, 0, removed.stderr);
    assert.ok(!existsSync(join(extracted, ALPINE)), "tree removed from the extract directory");
    assert.ok(!existsSync(join(downloads, `${ALPINE}.tar.xz`)), "archive removed from the store");
    const nested = await cli([...both.slice(0, 4), "-E", join(downloads, "trees"), "du"]);
    assert.equal(nested.code, 2);
    assert.match(nested.stderr, /^error: the extract directory .* are nested/m);
  });

  it("reads axbuild's own configuration file (registry, download_dir, extract_dir) with -c", async () => {
    const axbuild = join(t.dir, "tmp", "axbuild");
    await mkdir(axbuild, { recursive: true });
    const downloads = join(t.dir, "tgosimages");
    const rootfs = join(axbuild, "rootfs");
    const registry = `${t.site.base}${TGOS_REGISTRY_DIR}/default.toml`;
    // As axbuild writes it (toml::to_string_pretty of its ImageConfig).
    writeFileSync(
      join(axbuild, ".image.toml"),
      `registry = ${JSON.stringify(registry)}\ndownload_dir = ${JSON.stringify(downloads)}\nextract_dir = ${JSON.stringify(rootfs)}\n`,
    );
    const run = await cli(["-c", "tmp/axbuild/.image.toml", "pull", "--arch", "aarch64", "--file"]);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout.trim(), join(rootfs, ALPINE, ALPINE));
    assert.ok(existsSync(join(downloads, `${ALPINE}.tar.xz`)));
    const [row] = JSON.parse(
      (await cli(["-c", "tmp/axbuild/.image.toml", "ls", "--json", ALPINE])).stdout,
    ) as ImageJson[];
    assert.equal(row!.registry, registry);
    await rm(join(t.dir, "tmp"), { recursive: true, force: true });
    await rm(downloads, { recursive: true, force: true });
  });

  it("registries = [axvisor, tgos, URL]: merged in order, provenance per entry, a warning on conflicts", async () => {
    const tgosQemu = t.site.standIns.get("qemu-aarch64")!;
    const labToml = registryToml([
      { name: "lab-only", url: "https://lab.invalid/x.tar.gz", sha256: sha256("lab") },
      // The same name and version as tgos, another archive: a conflict; tgos is listed first.
      clashingQemu("other"),
    ]);
    t.site.put("lab/registry.toml", labToml);
    const labUrl = `${t.site.base}lab/registry.toml`;
    writeFileSync(
      join(t.dir, ".image.toml"),
      `local_storage = ${JSON.stringify(t.store)}\nregistries = ["axvisor", "tgos", ${JSON.stringify(labUrl)}]\n`,
    );
    const synced = await cli(["sync"]);
    assert.equal(synced.code, 0, synced.stderr);
    assert.match(synced.stderr, /^warning: .*qemu-aarch64:0\.0\.14.*/m);
    const rows = JSON.parse((await cli(["ls", "--json"])).stdout) as ImageJson[];
    const from = (name: string) => rows.find((r) => r.name === name)?.registry;
    assert.equal(from("qemu_aarch64_linux"), "axvisor");
    assert.equal(from(ALPINE), "tgos");
    assert.equal(from("lab-only"), labUrl);
    const qemu = rows.find((r) => r.name === "qemu-aarch64");
    assert.equal(qemu?.sha256, sha256(tgosQemu.archive), "first wins");
    const table = await cli(["ls"]);
    assert.match(table.stdout, /^Name +Version +Architecture +Pulled +Registry +Description\n/);
    assert.match(
      table.stdout,
      /^lab-only +0\.0\.1 +aarch64 +- +http:\/\/127\.0\.0\.1:\d+\/lab\/registry\.toml +/m,
    );
    // -R NAME on the command line replaces the list.
    const one = JSON.parse((await cli(["-R", "axvisor", "ls", "--json"])).stdout) as ImageJson[];
    assert.ok(one.some((r) => r.name === "qemu_aarch64_linux"));
  });

  it("a registry that cannot be read: its fallback (TGOS_IMAGE_REGISTRY_FALLBACK_URL), then its last good copy", async () => {
    writeFileSync(
      join(t.dir, ".image.toml"),
      `local_storage = ${JSON.stringify(t.store)}\nregistries = ["tgos", "axvisor"]\n`,
    );
    const first = await cli(["sync"]);
    assert.equal(first.code, 0, first.stderr);
    const root = join(t.site.root, TGOS_REGISTRY_DIR, "default.toml");
    const saved = readFileSync(root);
    await rm(root);
    try {
      const fallback = `${t.site.base}${TGOS_REGISTRY_DIR}/v0.0.15.toml`;
      const viaFallback = await cli(["sync"], { TGOS_IMAGE_REGISTRY_FALLBACK_URL: fallback });
      assert.equal(viaFallback.code, 0, viaFallback.stderr);
      const info = await cli(["info", ALPINE]);
      assert.match(info.stdout, /^version 0\.0\.15 \(latest\)$/m);
      assert.match(info.stdout, /registry +tgos \(.*v0\.0\.15\.toml, its fallback\)$/m);
      // Neither the registry nor its fallback: its last good copy, while axvisor still updates.
      const noFallback = `${t.site.base}nowhere.toml`;
      const lastGood = await cli(["sync"], { TGOS_IMAGE_REGISTRY_FALLBACK_URL: noFallback });
      assert.equal(lastGood.code, 0, lastGood.stderr);
      const again = await cli(["info", ALPINE]);
      assert.match(again.stdout, /its last good copy\)$/m);
      const rows = JSON.parse((await cli(["ls", "--json"])).stdout) as ImageJson[];
      assert.ok(rows.some((r) => r.registry === "axvisor"));
    } finally {
      writeFileSync(root, saved);
    }
  });
});

describe("check FILE [--sha256 HEX]", () => {
  let dir: { path: string; cleanup: () => Promise<void> };
  before(async () => {
    dir = await tempDir();
  });
  after(() => dir.cleanup());

  it("prints the digest as sha256sum does, the path made absolute", async () => {
    writeFileSync(join(dir.path, "a.img"), "some bytes\n");
    const run = await runCli(["check", "a.img"], { cwd: dir.path });
    assert.equal(run.code, 0, run.stderr);
    const sum = execFileSync("sha256sum", [join(dir.path, "a.img")], { encoding: "utf8" });
    assert.equal(run.stdout, sum);
  });

  it("--sha256: equal passes (either case); different prints (mismatch) and exits 1", async () => {
    const file = join(dir.path, "b.img");
    writeFileSync(file, "other bytes\n");
    const digest = sha256("other bytes\n");
    const upper = await runCli(["check", file, "--sha256", digest.toUpperCase()]);
    assert.equal(upper.code, 0, upper.stderr);
    const wrong = sha256("x");
    const bad = await runCli(["check", file, "--sha256", wrong]);
    assert.equal(bad.code, 1);
    assert.equal(bad.stdout, `${digest}  ${file} (mismatch)\n`);
    assert.equal(bad.stderr, `error: checksum mismatch for ${file}\n`);
  });

  it("refuses a malformed digest (exit 2), a missing file, a directory and a FIFO without blocking", async () => {
    const file = join(dir.path, "c.img");
    writeFileSync(file, "c");
    const short = await runCli(["check", file, "--sha256", "abc"]);
    assert.equal(short.code, 2);
    assert.match(short.stderr, /^error: --sha256 "abc" /m);
    const missing = await runCli(["check", join(dir.path, "none.img")]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /^error: .*none\.img/m);
    const directory = await runCli(["check", dir.path]);
    assert.equal(directory.code, 1);
    execFileSync("mkfifo", [join(dir.path, "fifo")]);
    const fifo = await runCli(["check", join(dir.path, "fifo")], { timeoutMs: 20_000 });
    assert.equal(fifo.code, 1, "refused, not blocked on open");
    assert.match(fifo.stderr, /^error: .*fifo.*FIFO/im);
  });
});
