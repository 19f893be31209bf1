/**
 * Packaging, through npm itself: a production install in a checkout (`npm ci --omit=dev`, no
 * TypeScript) builds a working tool with Node's type stripper (Node 20, which has none, says how
 * to build instead), and runs a dist/ that tsc built; the packed tarball is small (no
 * example archives) and installs globally (`npm install -g`) into a working command. Uses the
 * dist/ that `npm test` has just built, and npm's cache (filled by the `npm ci` before it).
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { cp, readdir, rm, stat, writeFile } from "node:fs/promises";
import * as nodeModule from "node:module";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { cliEnv, runProcess, tempDir } from "./helpers/images.js";

/** Node's type stripper (Node >= 22.13), absent from Node 20. */
const { stripTypeScriptTypes } = nodeModule as { stripTypeScriptTypes?: unknown };
const checkout = fileURLToPath(new URL("..", import.meta.url));
const npm = (args: string[], cwd: string) =>
  runProcess("npm", [...args, "--prefer-offline", "--no-audit", "--no-fund"], {
    cwd,
    env: cliEnv({ npm_config_update_notifier: "false" }),
    timeoutMs: 240_000,
  });

describe("packaging", () => {
  let root: string;
  let cleanup: () => Promise<void>;
  before(async () => {
    ({ path: root, cleanup } = await tempDir());
  });
  after(() => cleanup());

  it("npm ci --omit=dev in a checkout builds the tool without dev deps (Node's type stripper), or says how", async () => {
    const copy = join(root, "checkout");
    for (const entry of ["package.json", "package-lock.json", "bin", "scripts", "src"]) {
      await cp(join(checkout, entry), join(copy, entry), { recursive: true });
    }
    const tool = (args: string[]) =>
      runProcess(process.execPath, [join(copy, "bin", "axvisor-image"), ...args]);
    const installed = await npm(["ci", "--omit=dev"], copy);
    assert.equal(installed.code, 0, installed.stderr);
    const modules = await readdir(join(copy, "node_modules"));
    assert.ok(!modules.includes("typescript"), "no dev dependency");
    assert.ok(!modules.some((m) => m.startsWith("bare-")), modules.join(" "));
    if (typeof stripTypeScriptTypes === "function") {
      assert.doesNotMatch(installed.stderr, /not built|ExperimentalWarning/);
      // The tool as a user runs it: a real file hashed and compared, the store read.
      const file = join(root, "file");
      await writeFile(file, "axvisor\n");
      const sha256 = createHash("sha256").update("axvisor\n").digest("hex");
      const checked = await tool(["check", file, "--sha256", sha256]);
      assert.equal(checked.code, 0, checked.stderr);
      const wrong = await tool(["check", file, "--sha256", "0".repeat(64)]);
      assert.equal(wrong.code, 1, wrong.stderr);
      assert.match(wrong.stderr, /^error: /);
      const du = await tool(["-S", join(root, "store"), "du"]);
      assert.equal(du.code, 0, du.stderr);
      assert.match(du.stdout, /^total: 0 B/);
      await rm(join(copy, "dist"), { recursive: true });
    } else {
      // Node 20 has no type stripper: the install succeeds and says how to build.
      assert.match(installed.stderr, /dist\/ is not built: Node v20\S* has no type stripper/);
      const run = await tool(["-V"]);
      assert.equal(run.code, 1);
      assert.match(run.stderr, /^error: axvisor-image is not built in this checkout/);
    }

    await cp(join(checkout, "dist"), join(copy, "dist"), { recursive: true });
    const built = await npm(["ci", "--omit=dev"], copy);
    assert.equal(built.code, 0, built.stderr);
    const version = await tool(["-V"]);
    assert.equal(version.code, 0, version.stderr);
    assert.match(version.stdout, /^\d+\.\d+\.\d+\n$/);
  });

  it("the packed tarball is small and installs globally into a working command", async () => {
    const packed = await npm(["pack", "--ignore-scripts", "--pack-destination", root], checkout);
    assert.equal(packed.code, 0, packed.stderr);
    const tarball = join(root, packed.stdout.trim().split("\n").at(-1)!);
    assert.ok((await stat(tarball)).size < 400_000, `${(await stat(tarball)).size} bytes`);
    const listing = await runProcess("tar", ["-tzf", tarball]);
    assert.doesNotMatch(listing.stdout, /examples\/|\.tar\.gz$|test\//);

    const prefix = join(root, "global");
    const installed = await npm(["install", "-g", "--prefix", prefix, tarball], root);
    assert.equal(installed.code, 0, installed.stderr);
    const store = join(root, "store");
    const run = await runProcess(join(prefix, "bin", "axvisor-image"), ["-S", store, "du"]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /total: /);
  });
});
