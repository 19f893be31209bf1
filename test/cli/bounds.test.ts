/**
 * Bounded time and memory on hostile input, through the CLI: registries and configuration files
 * that are FIFOs, devices, directories or too large; xz and zstd archives whose headers ask for
 * gigabytes of memory; a tar member with a negative size. Each ends at once with one `error:` line
 * naming what is at fault, and nothing is kept.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { crc32 } from "node:zlib";
import { after, before, describe, it } from "node:test";
import { cliEnv, makeTar, registryToml, runCli, type CliRun } from "../helpers/images.js";
import { member, tar } from "../helpers/tar.js";
import { startWorld, type World } from "../helpers/world.js";

/** Far above what any of these commands needs; only reached when one hangs. */
const HANG = 20_000;

/** The run ended by itself (not killed as hung) with exit 1 and one `error:` line. */
function assertOneError(run: CliRun, pattern: RegExp, status = 1): void {
  assert.equal(run.signal, null, `killed after ${HANG} ms: it hung\n${run.stderr}`);
  assert.equal(run.code, status, run.stderr);
  assert.match(run.stderr, pattern);
  assert.equal(run.stderr.match(/^error: /gm)?.length, 1, run.stderr);
  assert.doesNotMatch(run.stderr, /\n\s+at /, "no stack trace");
}

/** Store entries an interrupted or refused pull would leave: `.part` files, staging trees. */
async function leftovers(store: string): Promise<string[]> {
  const names = await readdir(store).catch(() => [] as string[]);
  const staging = await readdir(join(store, ".axvisor-image", "staging")).catch(() => []);
  return [...names.filter((n) => n.includes(".part")), ...staging];
}

/**
 * `xz` data of `input` whose block header declares a `2 << (code / 2 + 11)`-byte dictionary (for
 * an even `code`: 28 is 64 MiB, 36 is 1 GiB). It is compressed with a 4 KiB dictionary and the
 * header's dictionary byte (and CRC32) rewritten: a valid file that `xz -dc` decodes, made without
 * the 10.7 GiB of address space `xz --lzma2=dict=1GiB` asks for to compress.
 */
function xzDeclaringDictionary(input: Buffer, code: number): Buffer {
  const xz = execFileSync("xz", ["-c", "-T1", "--lzma2=dict=4KiB"], { input });
  const start = 12; // the stream header
  const headerSize = (xz[start]! + 1) * 4;
  const flags = xz[start + 1]!;
  assert.equal(flags & 0xc3, 0, "one filter, no sizes in the block header (xz -T1)");
  assert.deepEqual([...xz.subarray(start + 2, start + 4)], [0x21, 0x01], "LZMA2, 1 property byte");
  xz[start + 4] = code;
  const crcAt = start + headerSize - 4;
  xz.writeUInt32LE(crc32(xz.subarray(start, crcAt)), crcAt);
  return xz;
}

describe("bounded inputs (CLI)", () => {
  let w: World;
  let fifo: string;
  before(async () => {
    w = await startWorld();
    await w.publish("guest", "1.0", [{ name: "kernel", data: "k" }]);
    fifo = join(w.root, "fifo");
    execFileSync("mkfifo", [fifo]);
  });
  after(() => w.close());

  const cli = (args: string[], cwd = w.root) =>
    runCli(["-S", w.store, ...args], {
      cwd,
      env: cliEnv({ AXVISOR_REGISTRY_FALLBACK_URL: join(w.root, "no-fallback.toml") }),
      timeoutMs: HANG,
    });
  /** The error `sync` ends with when a local registry cannot be read: no fallback tried. */
  const syncFailure = (problem: string) => new RegExp(`^error: ${problem}$`, "m");

  it("-R naming a FIFO, a device or a directory fails at once, naming it", async () => {
    for (const [path, type] of [
      [fifo, "a FIFO"],
      ["/dev/zero", "a character device"],
      [w.root, "a directory"],
    ] as const) {
      const run = await cli(["-R", path, "sync"]);
      assertOneError(run, syncFailure(`${path}: ${type}, not a regular file`));
    }
    const url = await cli(["-R", `file://${fifo}`, "sync"]);
    assertOneError(url, syncFailure(`${fifo}: a FIFO, not a regular file`));
  });

  it("a registry including a local FIFO fails at once, naming the include", async () => {
    const root = join(w.root, "with-fifo.toml");
    await writeFile(root, registryToml([], ["fifo"]));
    const run = await cli(["-R", root, "sync"]);
    assertOneError(run, syncFailure(`${fifo}: a FIFO, not a regular file`));
  });

  it("-c refuses /dev/zero, a FIFO, a directory and a file over 1 MiB", async () => {
    const big = join(w.root, "big.toml");
    await writeFile(big, `# ${"x".repeat(1024 * 1024)}\n`);
    for (const [file, problem, status] of [
      ["/dev/zero", "is a character device, not a regular file", 2],
      [fifo, "is a FIFO, not a regular file", 2],
      [w.root, "is a directory, not a regular file", 2],
      [big, "is larger than 1 MiB", 1],
    ] as const) {
      const run = await cli(["-c", file, "config"]);
      assertOneError(run, new RegExp(`^error: config file ${file} ${problem}$`, "m"), status);
      assert.equal(run.stdout, "");
    }
  });

  it("a .image.toml found upward that is a FIFO or over 1 MiB is refused, not read", async () => {
    const project = join(w.root, "project");
    const deep = join(project, "src", "deep");
    await mkdir(deep, { recursive: true });
    const config = join(project, ".image.toml");
    execFileSync("mkfifo", [config]);
    const run = await cli(["config"], deep);
    assertOneError(
      run,
      new RegExp(`^error: config file ${config} is a FIFO, not a regular file`, "m"),
      2,
    );
    execFileSync("rm", [config]);
    await writeFile(config, `# ${"x".repeat(2 * 1024 * 1024)}\nauto_sync = false\n`);
    const big = await cli(["config"], deep);
    assertOneError(big, new RegExp(`^error: config file ${config} is larger than 1 MiB$`, "m"));
  });

  it("registry add refuses a FIFO or a device as the archive, and a FIFO as --file", async () => {
    const archive = join(w.root, "a.tar.gz");
    await writeFile(archive, await makeTar([{ name: "k", data: "k" }]));
    const add = (file: string, registry: string) =>
      cli(["registry", "add", file, "--file", registry, "--name", "n", "--version", "1"]);
    for (const file of [fifo, "/dev/zero"]) {
      const run = await add(file, join(w.root, "edited.toml"));
      assertOneError(run, new RegExp(`^error: archive ${file} is not a file$`, "m"), 2);
    }
    const run = await add(archive, fifo);
    assertOneError(run, new RegExp(`^error: ${fifo}: a FIFO, not a regular file$`, "m"));
  });

  /** Publishes `archive` as image `name` and checks that pulling it is refused: one line, nothing kept. */
  async function expectMemoryRefusal(name: string, ext: string, archive: Buffer, format: string) {
    await w.publish(name, "1.0", [], { ext, archive });
    assert.equal((await w.cli(["sync"])).code, 0);
    const run = await w.cli(["pull", name]);
    const message = `the archive's ${format} data needs more than 128 MiB of memory to decompress`;
    assertOneError(run, new RegExp(`^error: ${name}: ${message}; refused$`, "m"));
    assert.equal(existsSync(join(w.store, name)), false);
    assert.equal(existsSync(join(w.store, `${name}${ext}`)), false);
    assert.deepEqual(await leftovers(w.store), []);
  }

  it("an xz archive whose header asks for a 1 GiB dictionary is refused, nothing kept", async () => {
    const input = await makeTar([{ name: "kernel", data: "tiny" }]);
    const archive = xzDeclaringDictionary(input, 36);
    const file = join(w.root, "bigdict.tar.xz");
    await writeFile(file, archive);
    const listed = execFileSync("xz", ["--robot", "--list", "-vv", file]).toString();
    assert.match(listed, /\t--lzma2=dict=1GiB$/m);
    const needed = Number(/^summary\t(\d+)\t/m.exec(listed)?.[1]);
    assert.ok(needed > 1024 * 1024 * 1024, `xz needs ${needed} bytes to decode it`);
    assert.deepEqual(execFileSync("xz", ["-dc"], { input: archive }), input, "a valid xz file");
    await expectMemoryRefusal("bigdict", ".tar.xz", archive, "xz");
  });

  it("a zstd archive whose frame asks for a 1 GiB window is refused, nothing kept", async () => {
    // From a pipe, zstd cannot shrink the window to the input's size: the frame says 1 GiB.
    const input = await makeTar([{ name: "kernel", data: "tiny" }]);
    const archive = execFileSync("sh", ["-c", "cat | zstd -q --long=30 -c"], { input });
    await expectMemoryRefusal("bigwindow", ".tar.zst", archive, "zstd");
  });

  it("xz archives with the largest preset dictionary (64 MiB, xz -9e) still pull", async () => {
    const input = await makeTar([{ name: "kernel", data: "nine" }]);
    for (const [name, archive] of [
      ["preset9e", execFileSync("xz", ["-c", "-9e", "-T0"], { input })],
      ["declared64", xzDeclaringDictionary(input, 28)],
    ] as const) {
      await w.publish(name, "1.0", [], { ext: ".tar.xz", archive });
      assert.equal((await w.cli(["sync"])).code, 0);
      const run = await w.cli(["pull", name]);
      assert.equal(run.code, 0, run.stderr);
      assert.equal(run.stdout.trim(), join(w.store, name));
    }
  });

  it("a tar member with a negative base-256 size is refused, not read as empty", async () => {
    const negativeOne = Buffer.alloc(12, 0xff); // -1 in two's complement base-256
    const archive = tar(
      member({ name: "kernel", data: "k" }),
      member({ name: "negative", sizeField: negativeOne }),
      member({ name: "after", data: "a" }),
    );
    await w.publish("negsize", "1.0", [], { ext: ".tar", archive });
    assert.equal((await w.cli(["sync"])).code, 0);
    const run = await w.cli(["pull", "negsize"]);
    assertOneError(run, /^error: negsize: refused archive member "negative": negative size$/m);
    assert.match(run.stderr, /^hint: the archive is corrupt or malicious/m);
    assert.equal(existsSync(join(w.store, "negsize")), false);
    assert.equal(existsSync(join(w.store, "negsize.tar")), false);
    assert.deepEqual(await leftovers(w.store), []);
  });
});
