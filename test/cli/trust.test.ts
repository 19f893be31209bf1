/**
 * Trusting a registry (`[[trust]]`, `require_signatures`), end to end: the CLI syncs from a
 * mirror (`python3 -m http.server`, a server nobody here wrote) serving a registry signed with
 * the real minisign CLI and with this tool, then the mirror turns hostile: a tampered sha256 under
 * the old signature, an unsigned include, a key nobody pinned, an older signed copy replayed. Each
 * is refused with one line naming the file, and the store keeps its last good registry.
 */
import assert from "node:assert/strict";
import { mkdir, readFile, rm, utimes, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { parse } from "smol-toml";
import { after, before, describe, it } from "node:test";
import type { RegistryImageJson } from "../../src/cli/json.js";
import { generateSecretKey } from "../../src/minisign-key.js";
import { loadSigningKey, signRegistryFile } from "../../src/ops/sign.js";
import { parsePublicKey, type SigningKey } from "../../src/minisign.js";
import { registryToml, runCli, cliEnv, tempDir, type TestEntry } from "../helpers/images.js";
import {
  NO_MINISIGN,
  minisignKeyPair,
  minisignSign,
  type MinisignKeyPair,
} from "../helpers/minisign.js";
import { startPythonServer, type PythonServer } from "../helpers/python-server.js";

const entry = (name: string, digit: string): TestEntry => ({
  name,
  version: "1.0.0",
  url: `https://example.org/${name}.tar.gz`,
  sha256: digit.repeat(64),
});

describe("syncing a signed registry", { skip: NO_MINISIGN }, () => {
  let dir: { path: string; cleanup: () => Promise<void> };
  let server: PythonServer;
  /** The publisher's key, made by `minisign -G`, and a second one, made here. */
  let publisher: MinisignKeyPair;
  let signer: SigningKey;
  let other: SigningKey;
  /** The key ids as minisign prints them. */
  let publisherId: string;
  const now = Math.floor(Date.now() / 1000);
  /** Modification times of the mirror's files: always later, so that no validator matches. */
  let mtime = now + 1000;
  const served = (name: string) => join(dir.path, "mirror", name);
  const store = () => join(dir.path, "store");
  const rootUrl = () => server.url("default.toml");
  const root = registryToml([entry("root-image", "a")], ["v1.toml"]);
  const include = registryToml([entry("included-image", "b")]);

  /** Writes `name` on the mirror with a fresh mtime (so that no cached validator matches). */
  const serve = async (name: string, content: string | Buffer) => {
    await writeFile(served(name), content);
    mtime += 10;
    await utimes(served(name), mtime, mtime);
  };
  /** Signs the mirror's `name` with `key` at `timestamp`, as `registry sign` does. */
  const sign = async (name: string, key: SigningKey, timestamp: number) => {
    await signRegistryFile(served(name), key, { now: timestamp });
    mtime += 10;
    await utimes(served(`${name}.minisig`), mtime, mtime);
  };
  const trustConfig = (keys: string[]) =>
    writeFile(
      join(dir.path, ".image.toml"),
      `[[trust]]\nregistry = "${server.url("")}"\nkeys = ${JSON.stringify(keys)}\n`,
    );
  const cli = (args: string[]) =>
    runCli(["-S", store(), "-R", rootUrl(), ...args], {
      cwd: dir.path,
      // The fallback is a local unsigned registry: a refusal must not fall back to it.
      env: cliEnv({ AXVISOR_REGISTRY_FALLBACK_URL: join(dir.path, "fallback.toml") }),
    });
  const storedRegistry = () => readFile(join(store(), "images.toml"), "utf8");
  /** Syncs, expecting a refusal whose error line matches `expected`; the store is unchanged. */
  const refused = async (expected: RegExp) => {
    const before = await storedRegistry();
    const run = await cli(["sync"]);
    assert.equal(run.code, 1, run.stderr);
    const lines = run.stderr.trimEnd().split("\n");
    const [line, ...rest] = lines.slice(lines.findIndex((l) => l.startsWith("error: ")));
    assert.match(line!, /^error: sync refused: /);
    assert.match(line!, expected);
    assert.ok(
      rest.every((l) => l.startsWith("hint: ")),
      run.stderr,
    );
    assert.match(run.stderr, /the registry already in the store was kept/);
    assert.doesNotMatch(run.stderr, /fallback/);
    assert.equal(await storedRegistry(), before, "the store keeps its last good registry");
  };

  before(async () => {
    dir = await tempDir();
    await mkdir(join(dir.path, "mirror"));
    server = await startPythonServer(join(dir.path, "mirror"));
    publisher = await minisignKeyPair(dir.path, "publisher");
    other = (await generateSecretKey(undefined)).key;
    publisherId = parsePublicKey(publisher.publicKey, "publisher").keyId;
    await writeFile(join(dir.path, "fallback.toml"), registryToml([entry("fallback-image", "f")]));
    await serve("default.toml", root);
    await serve("v1.toml", include);
    // The root signed by minisign itself, the include by this tool with the publisher's key.
    await minisignSign(served("default.toml"), publisher);
    signer = await loadSigningKey(publisher.secretKey);
    await sign("v1.toml", signer, now);
    await trustConfig([publisher.publicKey]);
  });
  after(async () => {
    await server?.stop();
    await dir?.cleanup();
  });

  it("accepts a registry signed by the pinned key, and says so in info and ls --json", async () => {
    const run = await cli(["sync"]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(
      run.stderr,
      new RegExp(`registry verified: every file signed by key ${publisherId}`),
    );
    const ls = JSON.parse((await cli(["ls", "--json"])).stdout) as RegistryImageJson[];
    assert.deepEqual(
      ls.map((i) => [i.name, i.verified_by]),
      [
        ["included-image", publisherId],
        ["root-image", publisherId],
      ],
    );
    const info = await cli(["info", "root-image"]);
    assert.match(info.stdout, new RegExp(`signed +verified, key ${publisherId}$`, "m"));
  });

  it("pins a local registry by a path relative to .image.toml, given by -R relative to the working directory", async () => {
    const project = join(dir.path, "project");
    await mkdir(join(project, "sub"), { recursive: true });
    await writeFile(
      join(project, ".image.toml"),
      `[[trust]]\nregistry = "../mirror/"\nkeys = ["${publisher.publicKey}"]\n`,
    );
    const run = (args: string[]) =>
      runCli(["-S", join(project, "store"), "-R", "../../mirror/default.toml", ...args], {
        cwd: join(project, "sub"),
        env: cliEnv(),
      });
    const synced = await run(["sync"]);
    assert.equal(synced.code, 0, synced.stderr);
    assert.match(synced.stderr, /^registry synced: 2 images from 2 files$/m);
    assert.match(synced.stderr, new RegExp(`every file signed by key ${publisherId}`));
    const ls = JSON.parse((await run(["ls", "--json"])).stdout) as RegistryImageJson[];
    assert.deepEqual(
      ls.map((i) => i.verified_by),
      [publisherId, publisherId],
    );
  });

  it("refuses a tampered include under its old signature", async () => {
    await serve("v1.toml", include.replace("b".repeat(64), "c".repeat(64)));
    await refused(/v1\.toml: the content does not match its signature/);
    await serve("v1.toml", include);
  });

  it("refuses an include without a signature", async () => {
    const signature = await readFile(served("v1.toml.minisig"));
    await rm(served("v1.toml.minisig"));
    await refused(/v1\.toml: not signed \(no .*v1\.toml\.minisig\), but a key is pinned/);
    await serve("v1.toml.minisig", signature);
  });

  it("refuses a signature by a key nobody pinned", async () => {
    const signature = await readFile(served("default.toml.minisig"));
    await sign("default.toml", other, now + 5);
    await refused(
      new RegExp(`default\\.toml: signed by key ${other.publicKey.keyId}, which is not pinned`),
    );
    await serve("default.toml.minisig", signature);
  });

  it("refuses an older signed copy replayed, and accepts the current one again", async () => {
    const signature = await readFile(served("v1.toml.minisig"));
    await sign("v1.toml", signer, now - 3600);
    await refused(
      /v1\.toml: signed at .*, before the copy already accepted .*: refused as a rollback/,
    );
    await serve("v1.toml.minisig", signature);
    const again = await cli(["sync"]);
    assert.equal(again.code, 0, again.stderr);
  });

  it("rotates keys: with both pinned, a file signed by the new key is verified by it", async () => {
    await trustConfig([publisher.publicKey, other.publicKey.text]);
    const config = await cli(["config"]);
    assert.match(config.stdout, /^require_signatures = false {2}# default$/m);
    assert.match(config.stdout, /^# trust: file .*\.image\.toml$/m);
    assert.ok(config.stdout.includes(other.publicKey.text), config.stdout);
    await sign("v1.toml", other, now + 60);
    const run = await cli(["sync"]);
    assert.equal(run.code, 0, run.stderr);
    const ls = JSON.parse((await cli(["ls", "--json"])).stdout) as RegistryImageJson[];
    assert.deepEqual(
      ls.map((i) => [i.name, i.verified_by]),
      [
        ["included-image", other.publicKey.keyId],
        ["root-image", publisherId],
      ],
    );
  });

  it("--require-signatures refuses a registry no key is pinned for; without it, it is taken", async () => {
    const unsigned = join(dir.path, "fallback.toml");
    const strict = await runCli(["-S", store(), "-R", unsigned, "--require-signatures", "sync"], {
      cwd: dir.path,
      env: cliEnv(),
    });
    assert.equal(strict.code, 1);
    assert.match(
      strict.stderr,
      /^error: sync refused: .*fallback\.toml: signatures are required, but no key is pinned for this registry$/m,
    );
    const lax = await runCli(["-S", store(), "-R", unsigned, "sync"], {
      cwd: dir.path,
      env: cliEnv(),
    });
    assert.equal(lax.code, 0, lax.stderr);
    const ls = JSON.parse(
      (await runCli(["-S", store(), "-N", "ls", "--json"])).stdout,
    ) as RegistryImageJson[];
    assert.deepEqual(
      ls.map((i) => [i.name, i.verified_by]),
      [["fallback-image", null]],
    );
  });

  it("refuses a broken [[trust]] table in .image.toml, naming the key", async () => {
    await writeFile(
      join(dir.path, ".image.toml"),
      `[[trust]]\nregistry = "${server.url("")}"\nkeys = ["RWQnot-a-key"]\n`,
    );
    const run = await cli(["sync"]);
    assert.equal(run.code, 1);
    assert.match(
      run.stderr,
      /^error: .*\.image\.toml: trust\[0\]\.keys\[0\]: not a minisign public key/m,
    );
  });
});

describe("verified_by with several registries", () => {
  it("is null for an entry an unsigned registry listed first, even when a signed one lists the same name and version", async () => {
    const { path: dir, cleanup } = await tempDir();
    try {
      const { key } = await generateSecretKey(undefined);
      const unsigned = join(dir, "unsigned", "registry.toml");
      const signed = join(dir, "signed", "registry.toml");
      await mkdir(join(dir, "unsigned"));
      await mkdir(join(dir, "signed"));
      // The same name and version in both, with different content: the first registry's wins.
      await writeFile(unsigned, registryToml([entry("shared-image", "a")]));
      await writeFile(
        signed,
        registryToml([entry("shared-image", "b"), entry("signed-image", "c")]),
      );
      await signRegistryFile(signed, key);
      await writeFile(
        join(dir, ".image.toml"),
        `registries = ["./unsigned/registry.toml", "./signed/registry.toml"]\n` +
          `[[trust]]\nregistry = "./signed/"\nkeys = ["${key.publicKey.text}"]\n`,
      );
      const run = (args: string[]) =>
        runCli(["-S", join(dir, "store"), ...args], { cwd: dir, env: cliEnv() });
      const synced = await run(["sync"]);
      assert.equal(synced.code, 0, synced.stderr);
      const ls = JSON.parse((await run(["-N", "ls", "--json"])).stdout) as RegistryImageJson[];
      assert.deepEqual(
        ls.map((i) => [i.name, i.sha256, i.verified_by]),
        [
          ["shared-image", "a".repeat(64), null],
          ["signed-image", "c".repeat(64), key.publicKey.keyId],
        ],
      );
      const info = await run(["-N", "info", "shared-image"]);
      assert.match(info.stdout, /signed +not verified$/m);
    } finally {
      await cleanup();
    }
  });
});

describe("trust settings changed since the last sync", () => {
  it("the next command syncs under them: an unsigned registry is then refused, not used", async () => {
    const { path: dir, cleanup } = await tempDir();
    try {
      const { key } = await generateSecretKey(undefined);
      const registry = join(dir, "regs", "registry.toml");
      await mkdir(join(dir, "regs"));
      await writeFile(registry, registryToml([entry("guest", "a")]));
      const run = (args: string[]) =>
        runCli(["-S", join(dir, "store"), "-R", registry, ...args], { cwd: dir, env: cliEnv() });
      assert.equal((await run(["sync"])).code, 0, "synced with no key pinned");

      // A key is pinned afterwards: the registry in the store was never checked against it.
      await writeFile(
        join(dir, ".image.toml"),
        `[[trust]]\nregistry = "./regs/"\nkeys = ["${key.publicKey.text}"]\n`,
      );
      const refused = await run(["ls"]);
      assert.equal(refused.code, 1, refused.stdout);
      assert.match(refused.stderr, /^the trust settings changed since the last sync: syncing$/m);
      assert.match(refused.stderr, /^error: sync refused: .*registry\.toml: not signed/m);
      assert.doesNotMatch(refused.stdout, /guest/, "the unverified registry is not used");
      const noSync = await run(["-N", "pull", "guest"]);
      assert.equal(noSync.code, 1);
      assert.match(
        noSync.stderr,
        /^error: the trust settings \(\[\[trust\]\], require_signatures\) changed since the store's registry was synced$/m,
      );
      assert.match(noSync.stderr, /^hint: run `axvisor-image sync`/m);

      await signRegistryFile(registry, key);
      const verified = await run(["ls", "--json"]);
      assert.equal(verified.code, 0, verified.stderr);
      const listed = JSON.parse(verified.stdout) as RegistryImageJson[];
      assert.deepEqual(
        listed.map((i) => [i.name, i.verified_by]),
        [["guest", key.publicKey.keyId]],
      );
      const again = await run(["ls"]);
      assert.doesNotMatch(again.stderr, /syncing/, "synced under these settings: no new sync");
    } finally {
      await cleanup();
    }
  });
});

describe("config with [[trust]] tables", () => {
  it("prints them as TOML that reads back, one line each", async () => {
    const { path: dir, cleanup } = await tempDir();
    try {
      const [a, b] = await Promise.all([
        generateSecretKey(undefined),
        generateSecretKey(undefined),
      ]);
      const keys = [a.key.publicKey.text, b.key.publicKey.text];
      await writeFile(
        join(dir, ".image.toml"),
        `[[mirrors]]\nprefix = "https://github.com/"\nreplace = "https://mirror.example.org/"\n` +
          `[[trust]]\nregistry = "https://example.org/"\nkeys = ${JSON.stringify(keys)}\n`,
      );
      const run = await runCli(["config"], { cwd: dir, env: cliEnv() });
      assert.equal(run.code, 0, run.stderr);
      assert.doesNotMatch(run.stdout, /\\n/);
      // Through JSON: smol-toml's tables have no prototype.
      const shown = JSON.parse(JSON.stringify(parse(run.stdout))) as {
        trust?: { registry: string; keys: string[] }[];
        mirrors?: unknown[];
      };
      assert.deepEqual(shown.trust, [{ registry: "https://example.org/", keys }]);
      assert.deepEqual(shown.mirrors, [
        { prefix: "https://github.com/", replace: "https://mirror.example.org/" },
      ]);
    } finally {
      await cleanup();
    }
  });
});
