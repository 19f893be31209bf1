import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { Config } from "../../../src/config/config.js";
import { publish } from "../../../src/ops/publish.js";
import { pull } from "../../../src/ops/pull.js";
import { parseRegistry } from "../../../src/registry/format.js";
import { cliEnv, makeTar, makeTarGz, runCli, sha256, tempDir } from "../../helpers/images.js";
import { missingRegistry, startDockerRegistry, type DockerRegistry } from "./docker-registry.js";

const KERNEL = randomBytes(200_000);

function countRequests(log: string, method: string): number {
  return log.split("\n").filter((line) => line.includes(`"${method} /v2/`)).length;
}

describe(
  "publish to and pull from a real registry (docker-registry, open)",
  { skip: missingRegistry() },
  () => {
    let registry: DockerRegistry;
    let root: { path: string; cleanup: () => Promise<void> };
    const saved = { ...process.env };

    before(async () => {
      registry = await startDockerRegistry();
      root = await tempDir("axi-oci-open-");
      process.env.DOCKER_CONFIG = join(root.path, "no-docker-config");
    });
    after(async () => {
      process.env = saved;
      await registry?.close();
      await root?.cleanup();
    });

    function config(store: string, overrides: Partial<Config> = {}): Config {
      return {
        localStorage: join(root.path, store),
        registry: join(root.path, "registry.toml"),
        fallbackRegistry: join(root.path, "registry.toml"),
        autoSync: true,
        autoSyncThreshold: 0,
        mirrors: [],
        insecureRegistries: [],
        ...overrides,
      };
    }

    it("pushes in chunks, then pulls back by tag and by digest into fresh stores", async () => {
      const archivePath = join(root.path, "linux.tar.gz");
      const archive = await makeTarGz([{ name: "qemu-aarch64", data: KERNEL }]);
      await writeFile(archivePath, archive);
      const registryFile = join(root.path, "registry.toml");
      const options = {
        archive: archivePath,
        name: "linux",
        version: "1.0",
        arch: "aarch64",
        description: "Linux guest",
        releasedAt: "2026-04-10T02:35:51Z",
        to: `oci://${registry.host}/guests/linux:1.0`,
        registryFile,
        chunkSize: 64 * 1024,
      };
      const published = await publish(options);
      assert.equal(published.push?.uploaded, true);
      assert.equal(published.action, "added");
      assert.ok(countRequests(registry.log(), "PATCH") >= 3, "the archive went up in chunks");
      const text = await readFile(registryFile, "utf8");
      const [entry] = parseRegistry(text, registryFile).images;
      const digest = published.push?.manifestDigest;
      assert.deepEqual(entry, {
        name: "linux",
        version: "1.0",
        description: "Linux guest",
        sha256: sha256(archive),
        arch: "aarch64",
        url: `oci://${registry.host}/guests/linux@${digest}`,
        released_at: "2026-04-10T02:35:51Z",
      });
      assert.ok(
        text.includes(
          `url = "${entry?.url}"  # pushed as oci://${registry.host}/guests/linux:1.0\n`,
        ),
        text,
      );

      const byDigest = await pull(config("by-digest"), "linux:1.0");
      assert.deepEqual(await readFile(join(byDigest.path, "qemu-aarch64")), KERNEL);
      assert.equal(byDigest.archive, join(root.path, "by-digest", "linux-1.0.tar.gz"));
      assert.match(registry.log(), new RegExp(`"GET /v2/guests/linux/manifests/${digest}`));

      const tagged = { ...entry!, url: `oci://${registry.host}/guests/linux:1.0` };
      const byTag = await pull(config("by-tag"), "linux:1.0", { images: [tagged] });
      assert.deepEqual(await readFile(join(byTag.path, "qemu-aarch64")), KERNEL);

      const again = await publish(options);
      assert.equal(again.push?.uploaded, false, "a blob the registry has is not sent again");
      assert.equal(again.action, "unchanged");
    });

    it("publishes with the CLI, and the CLI pulls it back from a fresh store", async () => {
      const dir = join(root.path, "cli");
      await mkdir(dir);
      const archivePath = join(dir, "nimbos.tar");
      await writeFile(archivePath, await makeTar([{ name: "nimbos.bin", data: "nimbos kernel" }]));
      const registryFile = join(dir, "registry.toml");
      const kept = '# guests\n[[includes]]\nurl = "older.toml"\n';
      await writeFile(registryFile, kept);
      const to = `oci://${registry.host}/guests/nimbos:0.2`;
      const published = await runCli(
        ["publish", archivePath, "--name", "nimbos", "--version", "0.2", "--arch", "x86_64"].concat(
          ["--description", "NimbOS", "--to", to, "--registry-file", registryFile],
        ),
        { cwd: dir, env: cliEnv({ DOCKER_CONFIG: join(dir, "none") }) },
      );
      assert.equal(published.code, 0, published.stderr);
      const pinned = `oci://${registry.host}/guests/nimbos@sha256:`;
      assert.ok(published.stdout.startsWith(pinned), published.stdout);
      const text = await readFile(registryFile, "utf8");
      assert.ok(text.startsWith(kept), "the include and the comment are kept");
      assert.ok(text.includes(`  # pushed as ${to}\n`), text);
      await writeFile(join(dir, "older.toml"), ""); // the include must resolve for sync

      const store = join(dir, "fresh-store");
      const pulled = await runCli(["-S", store, "-R", registryFile, "pull", "nimbos:0.2"], {
        cwd: dir,
        env: cliEnv({ DOCKER_CONFIG: join(dir, "none") }),
      });
      assert.equal(pulled.code, 0, pulled.stderr);
      assert.equal(pulled.stdout, `${join(store, "nimbos-0.2")}\n`);
      assert.equal(
        await readFile(join(store, "nimbos-0.2", "nimbos.bin"), "utf8"),
        "nimbos kernel",
      );
      assert.equal(
        await readFile(join(store, "nimbos-0.2.tar"), "utf8").then((t) => t.length > 0),
        true,
      );
    });

    it("a missing tag: one error naming the image's URL once; an index of one manifest is followed", async () => {
      const dir = join(root.path, "cli-messages");
      await mkdir(dir);
      const archive = await makeTar([{ name: "k", data: "kernel" }]);
      const archivePath = join(dir, "k.tar");
      await writeFile(archivePath, archive);
      const registryFile = join(dir, "registry.toml");
      const env = cliEnv({ DOCKER_CONFIG: join(dir, "none") });
      const to = `oci://${registry.host}/guests/single:1.0`;
      const published = await runCli(
        ["publish", archivePath, "--name", "single", "--version", "1.0", "--arch", "x86_64"].concat(
          ["--description", "one platform", "--to", to, "--registry-file", registryFile],
        ),
        { cwd: dir, env },
      );
      assert.equal(published.code, 0, published.stderr);
      // An index naming that one manifest, as multi-platform tools push a single platform.
      const v2 = `http://${registry.host}/v2/guests/single/manifests`;
      const manifest = await fetch(`${v2}/1.0`, {
        headers: { accept: "application/vnd.oci.image.manifest.v1+json" },
      });
      const body = Buffer.from(await manifest.arrayBuffer());
      const index = {
        schemaVersion: 2,
        mediaType: "application/vnd.oci.image.index.v1+json",
        manifests: [
          {
            mediaType: "application/vnd.oci.image.manifest.v1+json",
            digest: `sha256:${sha256(body)}`,
            size: body.length,
            platform: { architecture: "amd64", os: "linux" },
          },
        ],
      };
      const put = await fetch(`${v2}/indexed`, {
        method: "PUT",
        headers: { "content-type": index.mediaType },
        body: JSON.stringify(index),
      });
      assert.equal(put.status, 201, await put.text());
      const text = await readFile(registryFile, "utf8");
      // The same entry under another name, its URL the tag `tag` (publish pinned the digest).
      const renamed = (name: string, tag: string) =>
        text
          .replaceAll('"single"', `"${name}"`)
          .replace(/^url = .*$/m, `url = "${to.replace(":1.0", `:${tag}`)}"`);
      await writeFile(registryFile, text + renamed("indexed", "indexed") + renamed("gone", "gone"));

      const store = join(dir, "store");
      const gone = await runCli(["-S", store, "-R", registryFile, "pull", "gone"], {
        cwd: dir,
        env,
      });
      assert.equal(gone.code, 1, gone.stderr);
      const error = gone.stderr.split("\n").find((l) => l.startsWith("error: "))!;
      const url = `oci://${registry.host}/guests/single:gone`;
      assert.equal(error.split(url).length, 2, `names ${url} once: ${error}`);
      assert.doesNotMatch(error, /\/v2\//, "not the registry's API URL as well");
      assert.match(error, /404/);

      const indexed = await runCli(["-S", store, "-R", registryFile, "pull", "indexed"], {
        cwd: dir,
        env,
      });
      assert.equal(indexed.code, 0, indexed.stderr);
      assert.doesNotMatch(indexed.stderr, /several platforms/);
      assert.equal(await readFile(join(indexed.stdout.trim(), "k"), "utf8"), "kernel");
    });

    it("shows the upload's progress as a pull does, and pins the new digest when the tag moves", async () => {
      const dir = join(root.path, "progress");
      await mkdir(dir);
      const registryFile = join(dir, "registry.toml");
      const to = `oci://${registry.host}/guests/big:1.0`;
      const publishCli = async (data: Buffer) => {
        const archivePath = join(dir, "big.tar");
        await writeFile(archivePath, await makeTar([{ name: "big.img", data }]));
        return runCli(
          ["publish", archivePath, "--name", "big", "--version", "1.0", "--arch", "riscv64"].concat(
            ["--description", "Big", "--to", to, "--registry-file", registryFile],
          ),
          { cwd: dir, env: cliEnv({ DOCKER_CONFIG: join(dir, "none") }) },
        );
      };
      // 9 MiB: two 4 MiB chunks and the rest, reported in the plain lines of a pull.
      const first = await publishCli(randomBytes(9 * 1024 * 1024));
      assert.equal(first.code, 0, first.stderr);
      const lines = first.stderr.split("\n");
      assert.ok(lines.includes("big:1.0: sending 9.00 MiB"), first.stderr);
      assert.ok(lines.includes("big:1.0: 44% (4.00 MiB of 9.00 MiB)"), first.stderr);
      assert.ok(lines.includes("big:1.0: 88% (8.00 MiB of 9.00 MiB)"), first.stderr);
      assert.ok(
        lines.some((l) => /^big:1\.0: 9\.00 MiB in .* \(.*\/s\)$/.test(l)),
        first.stderr,
      );

      const second = await publishCli(randomBytes(1024));
      assert.equal(second.code, 0, second.stderr);
      assert.notEqual(second.stdout, first.stdout, "a new manifest, a new digest");
      const text = await readFile(registryFile, "utf8");
      assert.equal(text.match(/# pushed as/g)?.length, 1, text);
      assert.ok(text.includes(`url = "${second.stdout.trim()}"  # pushed as ${to}\n`), text);
    });
  },
);

describe("a registry with htpasswd logins", { skip: missingRegistry({ htpasswd: true }) }, () => {
  const login = { username: "ci", password: "s3cret" };
  let registry: DockerRegistry;
  let root: { path: string; cleanup: () => Promise<void> };

  before(async () => {
    registry = await startDockerRegistry({ login });
    root = await tempDir("axi-oci-login-");
  });
  after(async () => {
    await registry?.close();
    await root?.cleanup();
  });

  /** A DOCKER_CONFIG directory whose config.json logs in as `username`:`password`. */
  async function dockerConfig(name: string, password: string): Promise<string> {
    const dir = join(root.path, name);
    await mkdir(dir);
    const auth = Buffer.from(`${login.username}:${password}`).toString("base64");
    await writeFile(
      join(dir, "config.json"),
      JSON.stringify({ auths: { [registry.host]: { auth } } }),
    );
    return dir;
  }

  function publishArgs(archivePath: string, registryFile: string): string[] {
    return ["publish", archivePath, "--name", "rk3588", "--version", "1.0", "--arch", "aarch64"]
      .concat(["--description", "RK3588 Linux", "--registry-file", registryFile])
      .concat(["--to", `oci://${registry.host}/boards/rk3588:1.0`]);
  }

  it("asks for a login, refuses a wrong one, and works with the docker login", async () => {
    const archivePath = join(root.path, "rk3588.tar.gz");
    await writeFile(archivePath, await makeTarGz([{ name: "Image", data: "rk3588 kernel" }]));
    const registryFile = join(root.path, "registry.toml");
    const anonymous = await runCli(publishArgs(archivePath, registryFile), {
      env: cliEnv({ DOCKER_CONFIG: join(root.path, "none") }),
    });
    const hint = `hint: log in with \`docker login ${registry.host}\` (logins are read from ${join(root.path, "none", "config.json")})\n`;
    assert.equal(anonymous.code, 1);
    assert.ok(
      anonymous.stderr.endsWith(
        `error: ${registry.host}: requires a login to pull,push boards/rk3588\n${hint}`,
      ),
      anonymous.stderr,
    );

    const wrong = await runCli(publishArgs(archivePath, registryFile), {
      env: cliEnv({ DOCKER_CONFIG: await dockerConfig("wrong", "nope") }),
    });
    assert.equal(wrong.code, 1);
    assert.match(
      wrong.stderr,
      new RegExp(`refused the login from .*config.json to pull,push boards/rk3588`),
    );

    const good = cliEnv({ DOCKER_CONFIG: await dockerConfig("good", login.password) });
    const published = await runCli(publishArgs(archivePath, registryFile), { env: good });
    assert.equal(published.code, 0, published.stderr);

    const store = join(root.path, "store");
    const pullArgs = ["-S", store, "-R", registryFile, "pull", "rk3588:1.0"];
    const refused = await runCli(pullArgs, {
      env: cliEnv({ DOCKER_CONFIG: join(root.path, "none") }),
    });
    assert.equal(refused.code, 1);
    const url = parseRegistry(await readFile(registryFile, "utf8"), registryFile).images[0]?.url;
    assert.ok(
      refused.stderr.endsWith(
        `error: rk3588:1.0: cannot download ${url}: requires a login to pull boards/rk3588\n${hint}`,
      ),
      refused.stderr,
    );
    const pulled = await runCli(pullArgs, { env: good });
    assert.equal(pulled.code, 0, pulled.stderr);
    assert.equal(await readFile(join(store, "rk3588-1.0", "Image"), "utf8"), "rk3588 kernel");
  });
});
