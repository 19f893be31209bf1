/**
 * The library as its users see it: the README's Library example, run as it is written against
 * the built package (`dist/index.js`, what `import "axvisor-image"` loads) and a local server, so
 * that the documented public surface cannot rot.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { cliEnv, runProcess } from "./helpers/images.js";
import { startWorld, type World } from "./helpers/world.js";

const ROOT = new URL("../", import.meta.url);

/** The first `ts` code block of the README's `## Library` section. */
async function libraryExample(): Promise<string> {
  const readme = await readFile(new URL("README.md", ROOT), "utf8");
  const section = readme.slice(readme.indexOf("\n## Library\n"));
  const block = /```ts\n([\s\S]*?)```/.exec(section)?.[1];
  assert.ok(block !== undefined, "the README's Library section has a ts example");
  return block;
}

describe("the library (README example)", () => {
  let w: World;
  before(async () => {
    w = await startWorld();
    await w.publish("qemu_aarch64_linux", "0.0.26", [{ name: "qemu-aarch64", data: "kernel" }]);
    await w.publish("other_board", "1.0", [{ name: "kernel", data: "other" }]);
  });
  after(() => w.close());

  it("runs as written, importing the package, and pulls the image it names", async () => {
    const example = await libraryExample();
    assert.match(example, /from "axvisor-image";/);
    const entry = new URL("dist/index.js", ROOT).href;
    const script = join(w.root, "example.mts"); // an ES module, as in a "type": "module" package
    await writeFile(
      script,
      example.replace('from "axvisor-image";', `from ${JSON.stringify(entry)};`),
    );
    await writeFile(
      join(w.root, ".image.toml"),
      `local_storage = ${JSON.stringify(w.store)}\nregistry = ${JSON.stringify(w.registryUrl)}\n`,
    );
    const tsx = import.meta.resolve("tsx");
    const run = await runProcess(process.execPath, ["--import", tsx, script], {
      cwd: w.root,
      env: cliEnv(),
    });
    assert.equal(run.code, 0, run.stderr);
    const tree = join(w.store, "qemu_aarch64_linux");
    assert.equal(
      run.stdout,
      `qemu_aarch64_linux 0.0.26\nqemu_aarch64_linux 0.0.26 is in ${tree}\n`,
    );
    assert.match(run.stderr, /^qemu_aarch64_linux download \d+ \d+$/m);
    assert.equal(await readFile(join(tree, "qemu-aarch64"), "utf8"), "kernel");
    assert.ok(existsSync(fileURLToPath(entry)));
  });
});
