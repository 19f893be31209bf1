/**
 * nginx as the server: keep-alive shared by many pulls, Range resumes, HTTPS with a CA made by
 * the test (trusted through NODE_EXTRA_CA_CERTS), redirects from https down to http refused,
 * credentials in URLs sent as Basic auth to their own origin only, and https registries that
 * include plain http files refused.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { execFileSync } from "node:child_process";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { partMetaPath } from "../../src/store/layout.js";
import { download } from "../../src/transfer/download.js";
import { httpSource } from "../../src/transfer/http-source.js";
import { missing } from "../helpers/daemon.js";
import {
  cliEnv,
  makeTarGz,
  registryToml,
  runCli,
  sha256,
  tempDir,
  type CliRun,
  type TestEntry,
} from "../helpers/images.js";
import { startNginx, type Nginx } from "../helpers/nginx.js";
import { makeTestCa, type TestCa } from "../helpers/test-ca.js";

const skip = missing("nginx") || missing("openssl");

describe("nginx: keep-alive, Range, TLS, redirects and credentials", { skip }, () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let www: string;
  let ca: TestCa;
  let nginx: Nginx;
  const archives = new Map<string, Buffer>();
  const kernels = new Map<string, Buffer>();
  let run: (args: string[], env?: Record<string, string>) => Promise<CliRun>;

  /** Publishes `name` as `<www>/<dir>/<name>.tar.gz` (a fresh kernel) and returns its entry. */
  async function publish(name: string, subdir = "pub"): Promise<TestEntry> {
    const kernel = randomBytes(200_000);
    const archive = await makeTarGz([{ name: "kernel", data: kernel }]);
    await mkdir(join(www, subdir), { recursive: true });
    await writeFile(join(www, subdir, `${name}.tar.gz`), archive);
    archives.set(name, archive);
    kernels.set(name, kernel);
    return { name, url: nginx.url(`${subdir}/${name}.tar.gz`), sha256: sha256(archive) };
  }

  before(async () => {
    dir = await tempDir();
    www = join(dir.path, "www");
    await mkdir(www);
    ca = await makeTestCa(dir.path);
    const hash = execFileSync("openssl", ["passwd", "-apr1", "s3cret"]).toString().trim();
    await writeFile(join(dir.path, "htpasswd"), `user:${hash}\n`);
    nginx = await startNginx(www, join(dir.path, "nginx"), {
      ca,
      locations: ({ http }) => `
        location /private/ { auth_basic "images"; auth_basic_user_file ${dir.path}/htpasswd; }
        location ~ ^/down/(.*)$ { return 302 http://127.0.0.1:${http}/pub/$1; }
        location ~ ^/away/(.*)$ { return 302 http://localhost:${http}/private/$1; }
        location ~ ^/here/(.*)$ { return 302 /private/$1; }`,
    });
    let count = 0;
    run = (args, env = {}) =>
      runCli(["-S", join(dir.path, `store-${count++}`), ...args], {
        env: cliEnv({ NODE_EXTRA_CA_CERTS: ca.caCert, ...env }),
      });
  });
  after(async () => {
    await nginx?.stop();
    await dir?.cleanup();
  });

  /** Writes `<www>/<file>` as a registry of `entries` and returns its plain-http URL. */
  async function registry(file: string, entries: TestEntry[], includes: string[] = []) {
    await writeFile(join(www, file), registryToml(entries, includes));
    return nginx.url(file);
  }

  it("pull -j 4 of six images: one pool of kept-alive connections serves them all", async () => {
    const names = ["one", "two", "three", "four", "five", "six"];
    const url = await registry("pool.toml", await Promise.all(names.map((n) => publish(n))));
    const before = (await nginx.requests()).length;
    const pulled = await run(["-R", url, "pull", "-j", "4", ...names]);
    assert.equal(pulled.code, 0, pulled.stderr);
    assert.doesNotMatch(pulled.stderr, /MaxListeners|Warning/);
    const store = pulled.stdout.trim().split("\n");
    for (const [i, name] of names.entries()) {
      assert.deepEqual(await readFile(join(store[i]!, "kernel")), kernels.get(name));
    }
    const requests = (await nginx.requests()).slice(before);
    assert.equal(requests.length, 7, "the registry and six archives");
    const connections = new Set(requests.map((r) => r.connection));
    assert.ok(connections.size <= 4, `${connections.size} connections for 7 requests`);
    assert.ok(
      requests.some((r) => r.connectionRequests > 1),
      "a connection was reused",
    );
  });

  it("resumes a .part with Range and If-Range, and nginx answers 206", async () => {
    const big = randomBytes(3 << 20);
    await writeFile(join(www, "big.bin"), big);
    const partPath = join(dir.path, "big.bin.part");
    const part = { path: partPath, meta: partMetaPath(partPath) };
    const received: Buffer[] = [];
    const sink = {
      reset: async () => void received.splice(0),
      write: async (chunk: Buffer) => void received.push(Buffer.from(chunk)), // lent: copied
    };
    const controller = new AbortController();
    await assert.rejects(
      download({
        sources: [httpSource(nginx.url("big.bin"))],
        part,
        sink: {
          reset: sink.reset,
          write: async (chunk) => {
            await sink.write(chunk);
            controller.abort(); // stop after the first batch: the .part keeps it
          },
        },
        signal: controller.signal,
      }),
    );
    const resumedFrom = Buffer.concat(received).length;
    assert.ok(resumedFrom > 0 && resumedFrom < big.length);
    const done = await download({ sources: [httpSource(nginx.url("big.bin"))], part, sink });
    assert.equal(done.size, big.length);
    assert.equal(sha256(Buffer.concat(received)), sha256(big));
    const last = (await nginx.requests()).at(-1)!;
    assert.equal(last.range, `bytes=${resumedFrom}-`);
    assert.equal(last.status, 206);
  });

  it("syncs and pulls over https with the test CA; without it, one clear error", async () => {
    const entry = { ...(await publish("secure")), url: nginx.tlsUrl("pub/secure.tar.gz") };
    await registry("tls.toml", [entry]);
    const url = nginx.tlsUrl("tls.toml");
    const pulled = await run(["-R", url, "pull", "secure"]);
    assert.equal(pulled.code, 0, pulled.stderr);
    assert.deepEqual(await readFile(join(pulled.stdout.trim(), "kernel")), kernels.get("secure"));

    const untrusted = await runCli(["-S", join(dir.path, "untrusted"), "-R", url, "sync"], {
      env: cliEnv({ AXVISOR_REGISTRY_FALLBACK_URL: url }),
    });
    assert.equal(untrusted.code, 1);
    assert.match(untrusted.stderr, /^error: .*tls\.toml: .*certificate/m);
    assert.doesNotMatch(untrusted.stderr, /\n\s+at /);
  });

  it("refuses a redirect from https down to plain http", async () => {
    const entry = await publish("downgraded");
    const url = await registry("down.toml", [
      { ...entry, url: nginx.tlsUrl("down/downgraded.tar.gz") },
    ]);
    const pulled = await run(["-R", url, "pull", "downgraded"]);
    assert.equal(pulled.code, 1);
    assert.match(
      pulled.stderr,
      /^error: .*down\/downgraded\.tar\.gz.*redirects from https down to plain http .*refused/m,
    );
    const requests = await nginx.requests();
    assert.ok(requests.some((r) => r.request.startsWith("GET /down/downgraded.tar.gz")));
    assert.ok(
      !requests.some((r) => r.request.startsWith("GET /pub/downgraded.tar.gz")),
      "the plain http URL was never requested",
    );
  });

  it("sends the user:password of an image or mirror URL as Basic auth, to that origin only", async () => {
    const entry = await publish("guarded", "private");
    const withCredentials = entry.url.replace("://", "://user:s3cret@");
    const url = await registry("private.toml", [
      { ...entry, name: "direct", url: withCredentials },
      { ...entry, name: "same_origin", url: withCredentials.replace("/private/", "/here/") },
      { ...entry, name: "elsewhere", url: withCredentials.replace("/private/", "/away/") },
      { ...entry, name: "mirrored", url: nginx.url("missing/guarded.tar.gz") },
    ]);
    for (const name of ["direct", "same_origin"]) {
      const pulled = await run(["-R", url, "pull", name]);
      assert.equal(pulled.code, 0, pulled.stderr);
    }
    const mirror = `${nginx.url("missing/")}=${withCredentials.replace("guarded.tar.gz", "")}`;
    const mirrored = await run(["-R", url, "--mirror", mirror, "pull", "mirrored"]);
    assert.equal(mirrored.code, 0, mirrored.stderr);
    const granted = (await nginx.requests()).filter(
      (r) => r.request.startsWith("GET /private/guarded.tar.gz") && r.status === 200,
    );
    assert.equal(granted.length, 3);
    assert.ok(granted.every((r) => r.user === "user" && r.host === "127.0.0.1"));

    const away = await run(["-R", url, "pull", "elsewhere"]);
    assert.equal(away.code, 1);
    assert.match(away.stderr, /^error: .*HTTP 401 Unauthorized/m);
    const redirected = (await nginx.requests()).filter((r) => r.host === "localhost");
    assert.ok(redirected.length > 0, "the redirect was followed");
    assert.ok(
      redirected.every((r) => r.user === "-" && r.status === 401),
      "no credentials for another origin",
    );
  });

  it("sync refuses an https registry that includes a plain http file, except on loopback", async () => {
    const entry = await publish("included");
    await registry("inc.toml", [entry]);
    const remote = "http://registry.example.org/v0.0.1.toml";
    await registry("mixed.toml", [], [remote]);
    const refused = await run(["-R", nginx.tlsUrl("mixed.toml"), "sync"], {
      AXVISOR_REGISTRY_FALLBACK_URL: nginx.tlsUrl("mixed.toml"),
    });
    assert.equal(refused.code, 1);
    assert.match(
      refused.stderr,
      /mixed\.toml: include "http:\/\/registry\.example\.org\/v0\.0\.1\.toml" refused: an https registry cannot include plain http/,
    );

    await registry("loopback.toml", [], [nginx.url("inc.toml")]);
    const local = await run(["-R", nginx.tlsUrl("loopback.toml"), "sync"]);
    assert.equal(local.code, 0, local.stderr);
    assert.match(local.stderr, /1 image from 2 files/);
  });
});
