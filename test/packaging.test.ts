/**
 * Packaging, through npm itself: a production install in a checkout (`npm ci --omit=dev`, no
 * TypeScript) succeeds, and runs the tool once it was built; the packed tarball is small (no
 * example archives) and installs globally (`npm install -g`) into a working command. Uses the
 * dist/ that `npm test` has just built, and npm's cache (filled by the `npm ci` before it).
 */
import assert from "node:assert/strict";
import { cp, readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { cliEnv, runProcess, tempDir } from "./helpers/images.js";

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

  it("npm ci --omit=dev in a checkout succeeds, and the built tool runs without dev deps", async () => {
    const copy = join(root, "checkout");
    for (const entry of ["package.json", "package-lock.json", "bin", "scripts", "src"]) {
      await cp(join(checkout, entry), join(copy, entry), { recursive: true });
    }
    const unbuilt = await npm(["ci", "--omit=dev"], copy);
    assert.equal(unbuilt.code, 0, unbuilt.stderr);
    assert.match(unbuilt.stderr, /dist\/ is not built: run `npm ci && npm run build`/);
    const run = await runProcess(process.execPath, [join(copy, "bin", "axvisor-image"), "-V"]);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /^error: axvisor-image is not built in this checkout/);

    await cp(join(checkout, "dist"), join(copy, "dist"), { recursive: true });
    const built = await npm(["ci", "--omit=dev"], copy);
    assert.equal(built.code, 0, built.stderr);
    const modules = await readdir(join(copy, "node_modules"));
    assert.ok(!modules.includes("typescript"), "no dev dependency");
    assert.ok(!modules.some((m) => m.startsWith("bare-")), modules.join(" "));
    const version = await runProcess(process.execPath, [join(copy, "bin", "axvisor-image"), "-V"]);
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
