/**
 * Several registries through the library: the built-in `tgos` and `axvisor` read from
 * `python3 -m http.server` serving their real files, merged in order with provenance records, the
 * configuration that names them, and `check`.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { resolveConfig, type Config } from "../../src/config/config.js";
import { FileProblemError } from "../../src/regular-file.js";
import type { Logger } from "../../src/log.js";
import { checkFile } from "../../src/ops/check.js";
import { openRegistry } from "../../src/ops/open-registry.js";
import { sync } from "../../src/ops/sync.js";
import { defaultRootfs, expandAlias } from "../../src/registry/aliases.js";
import { readProvenance } from "../../src/store/provenance.js";
import { UsageError } from "../../src/errors.js";
import { registryToml, sha256, tempDir } from "../helpers/images.js";
import { clashingQemu, TGOS_REGISTRY_DIR, TGOS_VERSION, useTgosSite } from "../helpers/tgos.js";
import { failureMessage } from "../registry/support.js";

function recorder(): Logger & { warnings: string[] } {
  const warnings: string[] = [];
  return { warnings, info: () => undefined, warn: (m) => warnings.push(m) };
}

describe("several registries, by name", () => {
  const t = useTgosSite();
  const config = async (registry: string | string[], env: Record<string, string> = {}) => {
    const { config } = await resolveConfig({
      cwd: t.dir,
      overrides: { localStorage: t.store, registry },
      env: { AXVISOR_IMAGE_REGISTRY_BASE_URL: t.site.base, ...env },
    });
    return config;
  };

  it("the built-in names read their own files at the base URL, each with its own fallback", async () => {
    const tgos = await config("tgos");
    assert.equal(tgos.fallbackRegistry, `${t.site.base}${TGOS_REGISTRY_DIR}/v0.0.15.toml`);
    const axvisor = await config("axvisor");
    assert.match(
      axvisor.fallbackRegistry,
      /axvisor-guest\/refs\/heads\/main\/registry\/v0\.0\.25\.toml$/,
    );
    const { config: defaults } = await resolveConfig({ cwd: t.dir, env: {} });
    assert.equal(defaults.registry, "axvisor", "the default stays axvisor-guest");
  });

  it("sync merges tgos then axvisor, with one provenance record per entry", async () => {
    const c: Config = await config(["tgos", "axvisor"]);
    const result = await sync(c);
    assert.deepEqual(
      result.registries.map((r) => [r.registry, r.via]),
      [
        ["tgos", "registry"],
        ["axvisor", "registry"],
      ],
    );
    const images = await openRegistry(c);
    const provenance = await readProvenance(t.store);
    assert.deepEqual(provenance?.registries, ["tgos", "axvisor"]);
    const alpine = images.find((e) => e.name === "rootfs-aarch64-alpine.img")!;
    assert.equal(alpine.version, TGOS_VERSION);
    assert.deepEqual(provenance?.of(alpine), {
      registry: "tgos",
      file: `${t.site.base}${TGOS_REGISTRY_DIR}/v0.0.14.toml`,
      via: "registry",
    });
    const guest = images.find((e) => e.name === "qemu_aarch64_linux")!;
    assert.equal(provenance?.of(guest)?.registry, "axvisor");
    // images.toml stays the Rust tool's form: no field of ours in it.
    const toml = readFileSync(join(t.store, "images.toml"), "utf8");
    assert.doesNotMatch(toml, /registry\s*=|provenance/);
  });

  it("the first registry wins on the same name and version, with a warning naming both", async () => {
    const clash = registryToml([clashingQemu("lab")]);
    t.site.put("lab/clash.toml", clash);
    const lab = `${t.site.base}lab/clash.toml`;
    const logger = recorder();
    await sync(await config([lab, "tgos"]), { logger });
    const images = await openRegistry(await config([lab, "tgos"]));
    const qemu = images.find((e) => e.name === "qemu-aarch64" && e.version === TGOS_VERSION)!;
    assert.equal(qemu.sha256, sha256("lab"), "the lab registry is listed first");
    assert.equal(logger.warnings.length, 1, logger.warnings.join("\n"));
    assert.match(logger.warnings[0]!, /qemu-aarch64:0\.0\.14/);
    assert.ok(logger.warnings[0]!.includes("tgos"), logger.warnings[0]);
  });

  it("one registry failing keeps its last good copy while the others update", async () => {
    const c = await config(["tgos", "axvisor"], {
      TGOS_IMAGE_REGISTRY_FALLBACK_URL: `${t.site.base}nowhere.toml`,
    });
    await sync(c);
    const root = join(t.site.root, TGOS_REGISTRY_DIR, "default.toml");
    const saved = readFileSync(root);
    await rm(root);
    try {
      const result = await sync(c);
      assert.deepEqual(
        result.registries.map((r) => r.via),
        ["last-good", "registry"],
      );
      const images = await openRegistry(c);
      assert.ok(images.some((e) => e.name === "rootfs-aarch64-alpine.img"));
      assert.ok(images.some((e) => e.name === "qemu_aarch64_linux"));
    } finally {
      writeFileSync(root, saved);
    }
  });

  it("the environment: ours before axbuild's, blank values ignored", async () => {
    const base = { AXVISOR_IMAGE_REGISTRY_BASE_URL: t.site.base };
    const resolved = (env: Record<string, string>) =>
      resolveConfig({ cwd: t.dir, env: { ...base, ...env } }).then((r) => r.config);
    const both = await resolved({
      AXVISOR_IMAGE_LOCAL_STORAGE: "/tmp/ours",
      TGOS_IMAGE_LOCAL_STORAGE: "/tmp/theirs",
      AXVISOR_REGISTRY_FALLBACK_URL: "https://a.example/f.toml",
      TGOS_IMAGE_REGISTRY_FALLBACK_URL: "https://b.example/f.toml",
    });
    assert.equal(both.localStorage, "/tmp/ours");
    assert.equal(both.fallbackRegistry, "https://a.example/f.toml");
    const theirs = await resolved({
      AXVISOR_IMAGE_LOCAL_STORAGE: " ",
      TGOS_IMAGE_DOWNLOAD_DIR: "/tmp/dl",
      TGOS_IMAGE_EXTRACT_DIR: "/tmp/ex",
      TGOS_IMAGE_REGISTRY_FALLBACK_URL: "https://b.example/f.toml",
    });
    assert.equal(theirs.localStorage, "/tmp/dl");
    assert.equal(theirs.extractDir, "/tmp/ex");
    assert.equal(theirs.fallbackRegistry, "https://b.example/f.toml");
  });

  it("`registries` in .image.toml: a list in order; an empty list or a repeat is refused", async () => {
    const file = join(t.dir, "list.toml");
    writeFileSync(file, 'registries = ["tgos", "axvisor"]\n');
    const { config: listed } = await resolveConfig({ cwd: t.dir, configFile: file, env: {} });
    assert.deepEqual(listed.registry, ["tgos", "axvisor"]);
    writeFileSync(file, 'registries = ["tgos", "tgos"]\n');
    const twice = await failureMessage(() => resolveConfig({ configFile: file, env: {} }));
    assert.match(twice, /registry tgos is listed twice/);
    writeFileSync(file, "registries = []\n");
    const empty = await failureMessage(() => resolveConfig({ configFile: file, env: {} }));
    assert.match(empty, /the list of registries is empty/);
  });
});

describe("many registries", () => {
  it("sync reads a dozen registries without a MaxListenersExceededWarning", async () => {
    const { path: dir, cleanup } = await tempDir();
    const warnings: Error[] = [];
    const onWarning = (warning: Error) => warnings.push(warning);
    process.on("warning", onWarning);
    try {
      const registries = Array.from({ length: 12 }, (_, i) => join(dir, `r${i}.toml`));
      registries.forEach((file, i) =>
        writeFileSync(
          file,
          registryToml([
            { name: `image-${i}`, url: "https://e.org/x.tar.gz", sha256: "a".repeat(64) },
          ]),
        ),
      );
      const { config } = await resolveConfig({
        cwd: dir,
        overrides: { localStorage: join(dir, "store"), registry: registries },
        env: {},
      });
      const result = await sync(config);
      assert.equal(result.images, 12);
      await new Promise((resolve) => setImmediate(resolve));
      assert.deepEqual(
        warnings.map((w) => w.name),
        [],
      );
    } finally {
      process.off("warning", onWarning);
      await cleanup();
    }
  });
});

describe("rootfs aliases and --arch", () => {
  it("expand as axbuild's --rootfs does, for its four architectures", () => {
    assert.deepEqual(defaultRootfs("riscv64"), { name: "rootfs-riscv64-alpine.img" });
    assert.deepEqual(expandAlias({ name: "debian", version: "0.0.15" }, "x86_64"), {
      name: "rootfs-x86_64-debian.img",
      version: "0.0.15",
    });
    assert.throws(() => defaultRootfs("arm64"), UsageError);
    assert.throws(() => expandAlias({ name: "qemu-aarch64" }, "aarch64"), UsageError);
  });
});

describe("checkFile", () => {
  let dir: { path: string; cleanup: () => Promise<void> };
  before(async () => {
    dir = await tempDir();
  });
  after(() => dir.cleanup());

  it("hashes a file, compares in either case, and never opens a FIFO", async () => {
    const file = join(dir.path, "x.img");
    writeFileSync(file, "x");
    const digest = sha256("x");
    assert.deepEqual(await checkFile(file), { path: file, sha256: digest });
    assert.equal((await checkFile(file, digest.toUpperCase())).matches, true);
    assert.equal((await checkFile(file, sha256("y"))).matches, false);
    execFileSync("mkfifo", [join(dir.path, "p")]);
    await assert.rejects(checkFile(join(dir.path, "p")), FileProblemError);
    await assert.rejects(checkFile(file, "zz"), UsageError);
  });
});
