/**
 * The default store: one per user (two users of a machine never share it), the Rust tool's
 * `<tmpdir>/.axvisor-images` kept for its owner, and a store of another user refused with the fix.
 * Through the real CLI; the second user is `nobody` (setpriv), which needs root.
 */
import assert from "node:assert/strict";
import { chmod, chown, mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { CLI, cliEnv, registryToml, runCli, runProcess, tempDir } from "../helpers/images.js";

const NOBODY = 65534;
const notRoot = process.getuid?.() === 0 ? false : "needs root to run the CLI as another user";

describe("the default store", () => {
  let root: string;
  let cleanup: () => Promise<void>;
  before(async () => {
    ({ path: root, cleanup } = await tempDir());
    await chmod(root, 0o755);
    await writeFile(join(root, "my.toml"), registryToml([]));
  });
  after(() => cleanup());

  /** A home and a tmpdir of their own, the store the CLI's `config` reports with them. */
  async function defaultStore(name: string, env: Record<string, string> = {}): Promise<string> {
    const home = join(root, name);
    await mkdir(join(home, "tmp"), { recursive: true });
    const run = await runCli(["config"], {
      cwd: home,
      env: cliEnv({ HOME: home, TMPDIR: join(home, "tmp"), XDG_CACHE_HOME: "", ...env }),
    });
    assert.equal(run.code, 0, run.stderr);
    return /^local_storage = "(.*)" {2}# default$/m.exec(run.stdout)![1]!;
  }

  it("is the user's cache directory: $XDG_CACHE_HOME/axvisor-image, else ~/.cache/axvisor-image", async () => {
    assert.equal(await defaultStore("a"), join(root, "a", ".cache", "axvisor-image"));
    const cache = join(root, "xdg");
    assert.equal(await defaultStore("b", { XDG_CACHE_HOME: cache }), join(cache, "axvisor-image"));
  });

  it("is the Rust tool's <tmpdir>/.axvisor-images when this user owns it and has no other", async () => {
    const home = join(root, "rust-user");
    await mkdir(join(home, "tmp", ".axvisor-images"), { recursive: true });
    assert.equal(await defaultStore("rust-user"), join(home, "tmp", ".axvisor-images"));
    await mkdir(join(home, ".cache", "axvisor-image"), { recursive: true });
    assert.equal(await defaultStore("rust-user"), join(home, ".cache", "axvisor-image"));
  });

  it(
    "two users of one machine: root's Rust store does not get in the other's way",
    { skip: notRoot },
    async () => {
      const tmp = join(root, "shared-tmp");
      const rustStore = join(tmp, ".axvisor-images");
      await mkdir(rustStore, { recursive: true, mode: 0o755 });
      await chmod(tmp, 0o1777);
      const home = join(root, "nobody");
      await mkdir(home);
      await chown(home, NOBODY, NOBODY);
      const asNobody = (args: string[]) =>
        runProcess(
          "setpriv",
          [
            `--reuid=${NOBODY}`,
            `--regid=${NOBODY}`,
            "--clear-groups",
            process.execPath,
            CLI,
            ...args,
          ],
          { cwd: home, env: cliEnv({ HOME: home, TMPDIR: tmp, XDG_CACHE_HOME: "" }) },
        );

      const own = await asNobody(["-R", join(root, "my.toml"), "-q", "sync", "--allow-empty"]);
      assert.equal(own.code, 0, own.stderr);
      const config = await asNobody(["config"]);
      assert.match(
        config.stdout,
        new RegExp(`^local_storage = "${home}/.cache/axvisor-image"`, "m"),
      );

      const theirs = await asNobody(["-S", rustStore, "-R", join(root, "my.toml"), "sync"]);
      assert.equal(theirs.code, 1, theirs.stderr);
      assert.match(
        theirs.stderr,
        new RegExp(
          `^error: cannot lock .*: the store ${rustStore} belongs to another user \\(uid 0\\) \\(EACCES\\)$`,
          "m",
        ),
      );
      assert.match(theirs.stderr, /^hint: .*-S DIR, or AXVISOR_IMAGE_LOCAL_STORAGE=DIR$/m);
      assert.equal(theirs.stderr.match(/^error: /gm)?.length, 1, theirs.stderr);
    },
  );
});
