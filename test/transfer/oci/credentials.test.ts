/**
 * Docker credential helpers, run as docker runs them: shell-script helpers on `PATH`
 * (`docker-credential-NAME get`, the host on stdin, JSON on stdout), named by `credHelpers` or
 * `credsStore` in a Docker config, in front of a real docker-registry with htpasswd logins (Basic
 * auth) and of the ghcr.io stand-in (Bearer tokens, where an identity token is exchanged).
 */
import assert from "node:assert/strict";
import { chmod, mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { pull } from "../../../src/ops/pull.js";
import { TransferError } from "../../../src/transfer/http.js";
import { loginCredentials, loginSource } from "../../../src/transfer/oci/credentials.js";
import {
  cliEnv,
  makeTarGz,
  registryToml,
  runCli,
  tempDir,
  type CliRun,
} from "../../helpers/images.js";
import { missingRegistry, startDockerRegistry, type DockerRegistry } from "./docker-registry.js";
import { startFakeGhcr, type FakeGhcr } from "./fake-ghcr.js";

const LOGIN = { username: "ci", password: "s3cret-from-the-helper" };

/**
 * Helpers as scripts: `axtest` answers `get` for `$AXTEST_HOST` with `$AXTEST_USER` and
 * `$AXTEST_SECRET` and logs what it was asked; `broken` fails printing a login; `slow` never
 * answers.
 */
const HELPERS: Record<string, string> = {
  axtest: [
    "input=$(cat)",
    'printf "%s %s\\n" "$1" "$input" >> "$AXTEST_LOG"',
    '[ "$1" = get ] || exit 1',
    'if [ "$input" = "$AXTEST_HOST" ]; then',
    '  printf \'{"ServerURL":"%s","Username":"%s","Secret":"%s"}\\n\' "$input" "$AXTEST_USER" "$AXTEST_SECRET"',
    "else",
    '  echo "credentials not found in native keychain"; exit 1',
    "fi",
  ].join("\n"),
  broken: `echo '{"Username":"ci","Secret":"${LOGIN.password}"}'; exit 3`,
  slow: "exec sleep 30",
};

function assertNoSecret(run: CliRun): void {
  assert.ok(!run.stdout.includes(LOGIN.password) && !run.stderr.includes(LOGIN.password));
}

describe("Docker credential helpers", { skip: missingRegistry({ htpasswd: true }) }, () => {
  let registry: DockerRegistry;
  let root: { path: string; cleanup: () => Promise<void> };
  let bin: string;
  let registryFile: string;
  let configs = 0;

  before(async () => {
    registry = await startDockerRegistry({ login: LOGIN });
    root = await tempDir("axi-oci-helpers-");
    bin = join(root.path, "bin");
    await mkdir(bin);
    for (const [name, body] of Object.entries(HELPERS)) {
      const program = join(bin, `docker-credential-${name}`);
      await writeFile(program, `#!/bin/sh\n${body}\n`);
      await chmod(program, 0o755);
    }
    registryFile = join(root.path, "registry.toml");
  });
  after(async () => {
    await registry?.close();
    await root?.cleanup();
  });

  /** A Docker config directory holding `config`, and the environment of a CLI run using it. */
  async function withConfig(config: object, helper: Record<string, string> = {}) {
    const dir = join(root.path, `docker-config-${++configs}`);
    await mkdir(dir);
    await writeFile(join(dir, "config.json"), JSON.stringify(config));
    const log = join(dir, "helper.log");
    await writeFile(log, "");
    const env = cliEnv({
      DOCKER_CONFIG: dir,
      PATH: `${bin}:${process.env.PATH}`,
      AXTEST_LOG: log,
      AXTEST_HOST: registry.host,
      AXTEST_USER: LOGIN.username,
      AXTEST_SECRET: LOGIN.password,
      ...helper,
    });
    return { env, file: join(dir, "config.json"), asked: () => readFile(log, "utf8") };
  }

  const pullArgs = (store: string) => ["-S", join(root.path, store), "-R", registryFile, "pull"];

  it("credHelpers[host] first: publish and pull with its login, never printing it", async () => {
    const archive = join(root.path, "rk3588.tar.gz");
    await writeFile(archive, await makeTarGz([{ name: "Image", data: "rk3588 kernel" }]));
    const helpers = await withConfig({
      credHelpers: { [registry.host]: "axtest" },
      credsStore: "not-installed",
    });
    const published = await runCli(
      ["publish", archive, "--name", "rk3588", "--version", "1.0", "--arch", "aarch64"]
        .concat(["--description", "RK3588", "--registry-file", registryFile])
        .concat(["--to", `oci://${registry.host}/boards/rk3588:1.0`]),
      { env: helpers.env },
    );
    assert.equal(published.code, 0, published.stderr);
    assertNoSecret(published);
    assert.match(await helpers.asked(), new RegExp(`^get ${registry.host}$`, "m"));

    const pulled = await runCli([...pullArgs("by-cred-helpers"), "rk3588"], { env: helpers.env });
    assert.equal(pulled.code, 0, pulled.stderr);
    assertNoSecret(pulled);
    const tree = join(root.path, "by-cred-helpers", "rk3588");
    assert.equal(await readFile(join(tree, "Image"), "utf8"), "rk3588 kernel");
  });

  it("credsStore for every host (skopeo 1.9 does not run it)", async () => {
    const store = await withConfig({ credsStore: "axtest" });
    const pulled = await runCli([...pullArgs("by-creds-store"), "rk3588"], { env: store.env });
    assert.equal(pulled.code, 0, pulled.stderr);
    assert.match(await store.asked(), new RegExp(`^get ${registry.host}$`, "m"));
  });

  it("a helper without a login, or with a refused one: the hint sends to the helper, not to docker login", async () => {
    const none = await withConfig({ credsStore: "axtest" }, { AXTEST_HOST: "other.example" });
    const anonymous = await runCli([...pullArgs("no-login"), "rk3588"], { env: none.env });
    assert.equal(anonymous.code, 1);
    assert.match(
      anonymous.stderr,
      /^error: rk3588: cannot download .*: requires a login to pull boards\/rk3588$/m,
    );
    assert.ok(
      anonymous.stderr.endsWith(
        `hint: docker-credential-axtest (credsStore in ${none.file}) has no login for ${registry.host}: add one to it\n`,
      ),
      anonymous.stderr,
    );

    const wrong = await withConfig(
      { credHelpers: { [registry.host]: "axtest" } },
      { AXTEST_SECRET: "stale-password" },
    );
    const refused = await runCli([...pullArgs("refused"), "rk3588"], { env: wrong.env });
    assert.equal(refused.code, 1);
    assert.match(
      refused.stderr,
      /refused the login from docker-credential-axtest to pull boards\/rk3588/,
    );
    assert.ok(
      refused.stderr.endsWith(
        `hint: the login docker-credential-axtest (credHelpers["${registry.host}"] in ${wrong.file}) gives for ${registry.host} was refused: renew it there\n`,
      ),
      refused.stderr,
    );
    for (const run of [anonymous, refused]) assert.doesNotMatch(run.stderr, /docker login/);
  });

  it("a helper that is not on PATH, or fails: one error naming it, without what it printed", async () => {
    const missing = await withConfig({ credsStore: "not-installed" });
    const absent = await runCli([...pullArgs("absent"), "rk3588"], { env: missing.env });
    assert.equal(absent.code, 1);
    assert.match(
      absent.stderr,
      new RegExp(
        `^error: rk3588: cannot download .*: credential helper docker-credential-not-installed \\(credsStore in ${missing.file}\\) is not on PATH\\nhint: install it, or remove credsStore from ${missing.file}\\n$`,
        "m",
      ),
    );

    const broken = await withConfig({ credsStore: "broken" });
    const failed = await runCli([...pullArgs("broken"), "rk3588"], { env: broken.env });
    assert.equal(failed.code, 1);
    assert.match(
      failed.stderr,
      /credential helper docker-credential-broken \(credsStore in .*\) failed \(exit status 3\)$/m,
    );
    assertNoSecret(failed);
  });

  it("a helper that does not answer is stopped at its time limit", async () => {
    const slow = await withConfig({ credsStore: "slow" });
    const source = await loginSource(registry.host, slow.env);
    await assert.rejects(
      loginCredentials(source, registry.host, { env: slow.env, timeoutMs: 200 }),
      (err) => {
        assert.ok(err instanceof TransferError);
        assert.match(
          err.message,
          /credential helper docker-credential-slow \(credsStore in .*\) did not answer within 0\.2 s/,
        );
        return true;
      },
    );
  });
});

describe("identity tokens (a helper's `<token>` user, `identitytoken` in auths)", () => {
  let fake: FakeGhcr;
  let root: { path: string; cleanup: () => Promise<void> };
  const saved = { ...process.env };

  before(async () => {
    fake = await startFakeGhcr();
    root = await tempDir("axi-oci-identity-");
  });
  after(async () => {
    process.env = saved;
    await fake.close();
    await root.cleanup();
  });

  it("are exchanged at the token service with the OAuth2 refresh-token grant", async () => {
    const archive = await makeTarGz([{ name: "kernel", data: "acr" }]);
    const img = fake.publish("acme/acr", "1.0", archive, { title: "acr.tar.gz" });
    const url = `oci://${fake.host}/acme/acr:1.0`;
    const entries = [{ name: "acr", version: "1.0", url, sha256: img.sha256 }];

    // Through a helper answering `<token>`, from the CLI.
    const bin = join(root.path, "bin");
    await mkdir(bin);
    const helper = join(bin, "docker-credential-idtoken");
    await writeFile(
      helper,
      `#!/bin/sh\ncat >/dev/null\necho '{"Username":"<token>","Secret":"refresh-from-helper"}'\n`,
    );
    await chmod(helper, 0o755);
    const dir = join(root.path, "helper-config");
    await mkdir(dir);
    await writeFile(join(dir, "config.json"), JSON.stringify({ credsStore: "idtoken" }));
    const registryFile = join(root.path, "registry.toml");
    await writeFile(registryFile, registryToml(entries));
    const before = fake.tokens.length;
    const run = await runCli(["-S", join(root.path, "cli"), "-R", registryFile, "pull", "acr"], {
      env: cliEnv({ DOCKER_CONFIG: dir, PATH: `${bin}:${process.env.PATH}` }),
    });
    assert.equal(run.code, 0, run.stderr);
    assert.ok(!run.stderr.includes("refresh-from-helper"));
    assert.deepEqual(fake.tokens[before], {
      method: "POST",
      service: "fake-ghcr",
      scope: "repository:acme/acr:pull",
      authorization: undefined,
      grantType: "refresh_token",
      refreshToken: "refresh-from-helper",
    });

    // From `auths`, as `az acr login` writes it, through the library.
    const stored = join(root.path, "auths-config");
    await mkdir(stored);
    await writeFile(
      join(stored, "config.json"),
      JSON.stringify({ auths: { [fake.host]: { auth: "", identitytoken: "refresh-from-file" } } }),
    );
    process.env.DOCKER_CONFIG = stored;
    const image = { ...entries[0]!, description: "acr", arch: "aarch64" };
    const config = {
      localStorage: join(root.path, "library"),
      registry: registryFile,
      fallbackRegistry: registryFile,
      autoSync: false,
      autoSyncThreshold: 0,
      mirrors: [],
      insecureRegistries: [],
    };
    const pulled = await pull(config, "acr", { images: [image] });
    assert.equal(await readFile(join(pulled.path, "kernel"), "utf8"), "acr");
    assert.equal(fake.tokens.at(-1)?.refreshToken, "refresh-from-file");
  });
});
