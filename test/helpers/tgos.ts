/**
 * A stand-in for raw.githubusercontent.com and GitHub releases, served by `python3 -m http.server`:
 * the real registry files of tgosimages and axvisor-guest (test/fixtures/) under the paths the
 * built-in registries `tgos` and `axvisor` read (`AXVISOR_IMAGE_REGISTRY_BASE_URL` points at it),
 * with their URLs rewritten to it, and stand-in archives of tgosimages' names and shapes made as
 * its `scripts/tools/pack.sh` makes them (`tar -I 'xz -T0 -9e'`: one member named like the image
 * for a rootfs or initramfs, `-C dir .` for a bundle), one of them `tar -cSJf` (old GNU sparse).
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { after, before, beforeEach } from "node:test";
import { fileURLToPath } from "node:url";
import { sha256, tempDir, type TestEntry } from "./images.js";
import { startPythonServer, type PythonServer } from "./python-server.js";

const FIXTURES = fileURLToPath(new URL("../fixtures/", import.meta.url));

/** Where the built-in registries' files are, below the base URL. */
export const TGOS_REGISTRY_DIR = "rcore-os/tgosimages/refs/heads/main/registry";
const AXVISOR_REGISTRY_DIR = "arceos-hypervisor/axvisor-guest/refs/heads/main/registry";
const TGOS_RELEASES = "rcore-os/tgosimages/releases/download";

/** The version of tgosimages' `default.toml` (it includes `v0.0.14.toml`). */
export const TGOS_VERSION = "0.0.14";

/**
 * An entry with the name and version of tgos' `qemu-aarch64` and another archive (`seed` makes its
 * sha256): a conflict for a registry listed with `tgos`.
 */
export function clashingQemu(seed: string): TestEntry {
  return {
    name: "qemu-aarch64",
    version: TGOS_VERSION,
    url: "https://lab.invalid/q.tar.xz",
    sha256: sha256(seed),
  };
}

/** A stand-in archive: its image, and what its single file or tree holds. */
export interface StandIn {
  name: string;
  /** The `.tar.xz` as served. */
  archive: Buffer;
  /** The image file of a single-file archive (a rootfs `.img`, an initramfs), as packed. */
  file?: Buffer;
}

/** See the module comment. */
export interface TgosSite {
  server: PythonServer;
  /** The base URL to give `AXVISOR_IMAGE_REGISTRY_BASE_URL` (ends with `/`). */
  base: string;
  /** The served directory. */
  root: string;
  /** The stand-ins, by image name (the same archive for each version of a name). */
  standIns: Map<string, StandIn>;
  /** Writes `text` at `path` (below the base URL). */
  put(path: string, text: string | Buffer): void;
  close(): Promise<void>;
}

/** An ext4 file system of `mib` MiB holding `/etc/os-release`, mostly holes. */
function ext4Image(dir: string, name: string, mib: number): string {
  const content = join(dir, `${name}.content`);
  mkdirSync(join(content, "etc"), { recursive: true });
  writeFileSync(join(content, "etc", "os-release"), `NAME="${name}"\n`);
  const path = join(dir, name);
  execFileSync("mkfs.ext4", ["-q", "-F", "-d", content, path, `${mib}M`]);
  return path;
}

/** `text` (a registry file) with each stand-in's sha256 in its entries. */
function withStandIns(text: string, standIns: Map<string, StandIn>): string {
  return text
    .split("[[images]]")
    .map((block) => {
      const name = /^name = "([^"]*)"$/m.exec(block)?.[1];
      const standIn = name === undefined ? undefined : standIns.get(name);
      if (!standIn) return block;
      return block.replace(/^sha256 = "[0-9a-f]{64}"$/m, `sha256 = "${sha256(standIn.archive)}"`);
    })
    .join("[[images]]");
}

/** Builds the stand-in archives in `dir`. */
function buildStandIns(dir: string): Map<string, StandIn> {
  const standIns = new Map<string, StandIn>();
  const packed = (name: string, args: string[]) => {
    const out = join(dir, `${name}.tar.xz`);
    execFileSync("tar", [...args.slice(0, -1), out, ...args.slice(-1)], { cwd: dir });
    return readFileSync(out);
  };
  // pack.sh: `tar -I 'xz -T0 -9e' -cf OUT -C dirname basename`, no --sparse.
  const single = (name: string, path: string, sparse = false) => {
    const flags = sparse ? ["-cSJf"] : ["-I", "xz -T0 -9e", "-cf"];
    standIns.set(name, { name, archive: packed(name, [...flags, name]), file: readFileSync(path) });
  };
  single("rootfs-aarch64-alpine.img", ext4Image(dir, "rootfs-aarch64-alpine.img", 16));
  single("rootfs-aarch64-busybox.img", ext4Image(dir, "rootfs-aarch64-busybox.img", 8));
  // What a publisher gets with `tar -cSJf`: an old GNU sparse member (type S).
  single("rootfs-x86_64-alpine.img", ext4Image(dir, "rootfs-x86_64-alpine.img", 8), true);
  const initramfs = join(dir, "initramfs-aarch64-busybox.cpio.gz");
  writeFileSync(initramfs, "070701 stand-in cpio\n");
  single("initramfs-aarch64-busybox.cpio.gz", initramfs);
  const board = join(dir, "orangepi-5-plus.img");
  writeFileSync(board, Buffer.alloc(4096, 0x5a));
  single("orangepi-5-plus.img", board);
  // pack.sh for a directory: `tar ... -C qemu-aarch64 .` (members ./, ./linux/...).
  const bundle = join(dir, "qemu-aarch64");
  mkdirSync(join(bundle, "linux"), { recursive: true });
  mkdirSync(join(bundle, "arceos"), { recursive: true });
  writeFileSync(join(bundle, "linux", "Image"), "stand-in kernel\n");
  writeFileSync(join(bundle, "arceos", "helloworld.bin"), "stand-in arceos\n");
  standIns.set("qemu-aarch64", {
    name: "qemu-aarch64",
    archive: packed("qemu-aarch64", ["-I", "xz -T0 -9e", "-C", bundle, "-cf", "."]),
  });
  return standIns;
}

/** Starts the site; call `close()` when done. */
export async function startTgosSite(): Promise<TgosSite> {
  const dir = await tempDir("axi-tgos-");
  const root = join(dir.path, "site");
  const work = join(dir.path, "work");
  mkdirSync(work, { recursive: true });
  const standIns = buildStandIns(work);
  const server = await startPythonServer(root);
  const base = server.url("/");
  const put = (path: string, text: string | Buffer) => {
    const file = join(root, path);
    mkdirSync(join(file, ".."), { recursive: true });
    writeFileSync(file, text);
  };
  const rewrite = (text: string) =>
    text
      .replaceAll("https://raw.githubusercontent.com/", base)
      .replaceAll(`https://github.com/${TGOS_RELEASES}/`, `${base}${TGOS_RELEASES}/`);
  for (const file of ["default.toml", "v0.0.13.toml", "v0.0.14.toml", "v0.0.15.toml"]) {
    const text = readFileSync(join(FIXTURES, "tgosimages-registry", file), "utf8");
    put(`${TGOS_REGISTRY_DIR}/${file}`, withStandIns(rewrite(text), standIns));
  }
  for (const file of readdirSync(join(FIXTURES, "axvisor-guest-registry"))) {
    const text = readFileSync(join(FIXTURES, "axvisor-guest-registry", file), "utf8");
    put(`${AXVISOR_REGISTRY_DIR}/${file}`, rewrite(text));
  }
  for (const version of ["0.0.13", "0.0.14", "0.0.15"]) {
    for (const standIn of standIns.values()) {
      put(`${TGOS_RELEASES}/v${version}/${standIn.name}.tar.xz`, standIn.archive);
    }
  }
  return {
    server,
    base,
    root,
    standIns,
    put,
    async close() {
      await server.stop();
      await dir.cleanup();
    },
  };
}

/** A {@link TgosSite} for a suite, with a working directory and a store in it. */
export interface TgosFixture {
  readonly site: TgosSite;
  /** The working directory of the tests (its `.image.toml` is removed before each test). */
  readonly dir: string;
  /** `<dir>/store`, removed before each test. */
  readonly store: string;
}

/** Registers hooks on the enclosing suite: one site for the suite, a clean store for each test. */
export function useTgosSite(): TgosFixture {
  let site: TgosSite | undefined;
  let dir: { path: string; cleanup: () => Promise<void> } | undefined;
  const fixture: TgosFixture = {
    get site() {
      return site!;
    },
    get dir() {
      return dir!.path;
    },
    get store() {
      return join(dir!.path, "store");
    },
  };
  before(async () => {
    site = await startTgosSite();
    dir = await tempDir();
  });
  after(async () => {
    await site?.close();
    await dir?.cleanup();
  });
  beforeEach(async () => {
    await rm(fixture.store, { recursive: true, force: true });
    await rm(join(fixture.dir, ".image.toml"), { force: true });
  });
  return fixture;
}
