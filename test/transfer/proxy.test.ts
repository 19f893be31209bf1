/**
 * Through a real forward proxy, tinyproxy, with Basic credentials in the proxy URL: plain http
 * requests in absolute form (HTTP_PROXY), https through CONNECT tunnels (HTTPS_PROXY) to nginx
 * with a test CA, NO_PROXY bypassing it, and a clear error when the proxy refuses.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { missing } from "../helpers/daemon.js";
import {
  cliEnv,
  makeTarGz,
  registryToml,
  runCli,
  sha256,
  tempDir,
  type CliRun,
} from "../helpers/images.js";
import { startNginx, type Nginx } from "../helpers/nginx.js";
import { makeTestCa, type TestCa } from "../helpers/test-ca.js";
import { startTinyproxy, type Tinyproxy } from "../helpers/tinyproxy.js";

const skip = missing("tinyproxy") || missing("nginx") || missing("openssl");

describe("through tinyproxy with credentials", { skip }, () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let ca: TestCa;
  let nginx: Nginx;
  let proxy: Tinyproxy;
  const kernel = randomBytes(300_000);
  let stores = 0;
  const pull = (registry: string, env: Record<string, string>): Promise<CliRun> =>
    runCli(["-S", join(dir.path, `store-${stores++}`), "-R", registry, "pull", "guest"], {
      env: cliEnv({
        NODE_EXTRA_CA_CERTS: ca.caCert,
        AXVISOR_REGISTRY_FALLBACK_URL: registry,
        ...env,
      }),
    });

  before(async () => {
    dir = await tempDir();
    const www = join(dir.path, "www");
    await mkdir(www);
    ca = await makeTestCa(dir.path);
    nginx = await startNginx(www, join(dir.path, "nginx"), { ca });
    const archive = await makeTarGz([{ name: "kernel", data: kernel }]);
    await writeFile(join(www, "guest.tar.gz"), archive);
    for (const [file, url] of [
      ["plain.toml", nginx.url("guest.tar.gz")],
      ["tls.toml", nginx.tlsUrl("guest.tar.gz")],
    ] as const) {
      await writeFile(
        join(www, file),
        registryToml([{ name: "guest", url, sha256: sha256(archive) }]),
      );
    }
    const proxyDir = join(dir.path, "proxy");
    await mkdir(proxyDir);
    proxy = await startTinyproxy(proxyDir, "proxyuser", "s3cretpw");
  });
  after(async () => {
    await proxy?.stop();
    await nginx?.stop();
    await dir?.cleanup();
  });

  it("plain http goes through HTTP_PROXY, sending the credentials of its URL", async () => {
    const run = await pull(nginx.url("plain.toml"), { HTTP_PROXY: proxy.url });
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(await readFile(join(run.stdout.trim(), "kernel")), kernel);
    const relayed = await proxy.relayed();
    assert.ok(relayed.includes(`GET ${nginx.url("plain.toml")}`), relayed.join("\n"));
    assert.ok(relayed.includes(`GET ${nginx.url("guest.tar.gz")}`), relayed.join("\n"));
  });

  it("https goes through HTTPS_PROXY in a CONNECT tunnel, the server's certificate checked", async () => {
    const before = (await proxy.relayed()).length;
    const run = await pull(nginx.tlsUrl("tls.toml"), { https_proxy: proxy.url });
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(await readFile(join(run.stdout.trim(), "kernel")), kernel);
    const relayed = (await proxy.relayed()).slice(before);
    const host = new URL(nginx.tlsUrl("")).host;
    assert.ok(
      relayed.length > 0 && relayed.every((line) => line === `CONNECT ${host}`),
      relayed.join("\n"),
    );
  });

  it("NO_PROXY hosts are reached directly", async () => {
    const before = (await proxy.relayed()).length;
    const run = await pull(nginx.tlsUrl("tls.toml"), {
      HTTPS_PROXY: proxy.url,
      HTTP_PROXY: proxy.url,
      NO_PROXY: "example.org,127.0.0.1",
    });
    assert.equal(run.code, 0, run.stderr);
    assert.equal((await proxy.relayed()).length, before);
  });

  it("a proxy refusing the request (no credentials) is one clear error", async () => {
    const run = await pull(nginx.url("plain.toml"), { HTTP_PROXY: proxy.anonymousUrl });
    assert.equal(run.code, 1);
    assert.match(run.stderr, /^error: .*plain\.toml: HTTP 407 Proxy Authentication Required/m);
    assert.doesNotMatch(run.stderr, /\n\s+at /);
  });
});
