/**
 * `registry keygen`, `registry sign`, and `registry add` / `publish` with `--key`, through the CLI,
 * checked with the real minisign CLI both ways: its keys sign here, our keys sign with it, and
 * `minisign -V` accepts what we sign.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { copyFile, readFile, readdir, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import {
  MINISIGN_KDF_LIMITS,
  generateSecretKey,
  parseSecretKeyFile,
} from "../../src/minisign-key.js";
import { parsePublicKey } from "../../src/minisign.js";
import { verifyRegistryFile, type SignatureVerdict } from "../../src/registry/signature.js";
import { CLI, cliEnv, registryToml, runCli, sha256, tempDir } from "../helpers/images.js";
import {
  NO_MINISIGN,
  QUICK_KDF,
  SCRYPT_TIMEOUT_MS,
  minisignKeyPair,
  minisignSign,
  minisignVerify,
  type MinisignKeyPair,
} from "../helpers/minisign.js";
import { FIXTURES } from "../registry/support.js";

/** The one error line (and hint) of a failed run. */
function errorLine(stderr: string): string {
  const lines = stderr.trimEnd().split("\n");
  assert.match(lines[0] ?? "", /^error: /);
  assert.ok(
    lines.slice(1).every((l) => l.startsWith("hint: ")),
    stderr,
  );
  return lines[0]!;
}

describe("signing registries through the CLI", { skip: NO_MINISIGN }, () => {
  let dir: { path: string; cleanup: () => Promise<void> };
  /**
   * Keys made by `minisign -G -W`, and with a password (minisign's 1 GiB scrypt: seconds at each
   * use); `quick.key` is encrypted with libsodium's smallest limits, for the password's paths.
   */
  let plain: MinisignKeyPair;
  let encrypted: MinisignKeyPair;
  let quick: MinisignKeyPair;
  const file = (name: string) => join(dir.path, name);
  /** Runs the CLI; minisign's 1 GiB scrypt can take minutes on a loaded machine (no time is asserted). */
  const cli = (args: string[], input?: string) =>
    runCli(args, { cwd: dir.path, env: cliEnv(), input, timeoutMs: SCRYPT_TIMEOUT_MS });
  before(async () => {
    dir = await tempDir();
    [plain, encrypted] = await Promise.all([
      minisignKeyPair(dir.path, "plain"),
      minisignKeyPair(dir.path, "encrypted", "open sesame"),
    ]);
    for (const name of ["default.toml", "v0.0.26.toml", "v0.0.25.toml"]) {
      await copyFile(join(FIXTURES, name), file(name));
    }
    await writeFile(file("image.tar.gz"), "the archive bytes");
    const made = await generateSecretKey("open sesame", QUICK_KDF);
    await writeFile(file("quick.key"), made.secretKeyFile);
    quick = {
      secretKey: file("quick.key"),
      publicKeyFile: file("quick.pub"),
      publicKey: made.key.publicKey.text,
      password: "open sesame",
    };
  });
  after(() => dir.cleanup());

  /** The verdict on `name` and its `.minisig` with `publicKey` pinned. */
  const verdictOf = async (name: string, publicKey: string): Promise<SignatureVerdict> =>
    verifyRegistryFile({
      file: file(name),
      content: await readFile(file(name)),
      signature: await readFile(file(`${name}.minisig`)),
      keys: [parsePublicKey(publicKey, "key")],
    });

  it("keygen --unencrypted makes a key minisign signs with; sign writes what minisign -V accepts", async () => {
    const made = await cli(["registry", "keygen", "--key", "ours.key", "--unencrypted"]);
    assert.equal(made.code, 0, made.stderr);
    const publicKey = made.stdout.trim();
    assert.match(publicKey, /^RW[A-Za-z0-9+/]{54}$/);
    assert.equal((await readFile(file("ours.pub"), "utf8")).split("\n")[1], publicKey);
    assert.equal((await stat(file("ours.key"))).mode & 0o777, 0o600);
    const keyId = parsePublicKey(publicKey, "k").keyId;
    assert.match(
      made.stderr,
      new RegExp(`^made key ${keyId}: secret key ours\\.key \\(keep it secret\\)`),
    );

    // minisign signs with our key; we sign with it; minisign -V accepts both.
    const theirs = await minisignSign(file("v0.0.25.toml"), {
      secretKey: file("ours.key"),
      publicKeyFile: file("ours.pub"),
      publicKey,
    });
    assert.equal((await minisignVerify(file("v0.0.25.toml"), theirs, publicKey)).code, 0);
    const signed = await cli([
      "registry",
      "sign",
      "default.toml",
      "v0.0.26.toml",
      "--key",
      "ours.key",
    ]);
    assert.equal(signed.code, 0, signed.stderr);
    assert.equal(signed.stdout, "default.toml.minisig\nv0.0.26.toml.minisig\n");
    for (const name of ["default.toml", "v0.0.26.toml"]) {
      const check = await minisignVerify(file(name), file(`${name}.minisig`), publicKey);
      assert.equal(check.code, 0, check.stderr);
      assert.match(
        check.stdout,
        new RegExp(`Trusted comment: timestamp:\\d+\tfile:${name}\thashed`),
      );
      assert.equal((await verdictOf(name, publicKey)).status, "verified");
    }

    // A second keygen keeps the key it would replace.
    const again = await cli(["registry", "keygen", "--key", "ours.key", "--unencrypted"]);
    assert.equal(again.code, 2);
    assert.equal(errorLine(again.stderr), "error: ours.key exists already");
    assert.equal((await readFile(file("ours.pub"), "utf8")).split("\n")[1], publicKey);
  });

  it("keygen refuses one file for both keys, however it is spelled, and writes nothing", async () => {
    for (const force of [[], ["--force"]]) {
      const run = await cli([
        "registry",
        "keygen",
        "--unencrypted",
        "--key",
        "same.key",
        "--public-key",
        "./sub/../same.key",
        ...force,
      ]);
      assert.equal(run.code, 2, run.stderr);
      assert.match(errorLine(run.stderr), /^error: the public and the secret key cannot both be /);
      await assert.rejects(readFile(file("same.key")), { code: "ENOENT" });
    }
  });

  it("signs with the publisher's minisign keys, encrypted ones with the password on stdin", async () => {
    const run = await cli(["registry", "sign", "v0.0.26.toml", "--key", plain.secretKey]);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(
      (await minisignVerify(file("v0.0.26.toml"), file("v0.0.26.toml.minisig"), plain.publicKey))
        .code,
      0,
    );

    const wrong = await cli(["registry", "sign", "v0.0.26.toml", "--key", "quick.key"], "guess\n");
    assert.equal(wrong.code, 1);
    assert.equal(
      errorLine(wrong.stderr),
      "error: secret key quick.key: wrong password for this key",
    );
    const none = await cli(["registry", "sign", "v0.0.26.toml", "--key", "quick.key"]);
    assert.equal(none.code, 1);
    assert.equal(
      errorLine(none.stderr),
      "error: secret key quick.key: no password (standard input ended)",
    );
    // minisign -G's limits are the ones keygen writes (libsodium's "sensitive": 1 GiB).
    const limits = parseSecretKeyFile(await readFile(encrypted.secretKey), "k").limits;
    assert.deepEqual(limits, MINISIGN_KDF_LIMITS);
    const right = await cli(
      ["registry", "sign", "v0.0.26.toml", "--key", encrypted.secretKey],
      "open sesame\n",
    );
    assert.equal(right.code, 0, right.stderr);
    const check = await minisignVerify(
      file("v0.0.26.toml"),
      file("v0.0.26.toml.minisig"),
      encrypted.publicKey,
    );
    assert.equal(check.code, 0, check.stderr);
  });

  it("keygen encrypts with the password typed twice, with minisign's scrypt limits", async () => {
    const differ = await cli(["registry", "keygen", "--key", "pw.key"], "one\ntwo\n");
    assert.equal(differ.code, 1);
    assert.equal(errorLine(differ.stderr), "error: the two passwords differ: no key was made");
    const empty = await cli(["registry", "keygen", "--key", "pw.key"], "\n");
    assert.equal(empty.code, 2);
    assert.equal(errorLine(empty.stderr), "error: new key pw.key: empty password");
    assert.deepEqual(
      (await readdir(dir.path)).filter((n) => n.startsWith("pw.")),
      [],
    );

    const made = await cli(
      ["registry", "keygen", "--key", "pw.key", "--public-key", "pw-public"],
      "s3cret\ns3cret\n",
    );
    assert.equal(made.code, 0, made.stderr);
    assert.equal((await readFile(file("pw-public"), "utf8")).split("\n")[1], made.stdout.trim());
    // What minisign -G writes (test/shared/minisign.test.ts has minisign sign with such keys).
    const parsed = parseSecretKeyFile(await readFile(file("pw.key")), "pw.key");
    assert.equal(parsed.encrypted, true);
    assert.deepEqual(parsed.limits, MINISIGN_KDF_LIMITS);
  });

  it("registry add and publish re-sign the registry file with --key", async () => {
    await copyFile(file("v0.0.26.toml"), file("lab.toml"));
    const add = await cli([
      "registry", "add", "image.tar.gz", "--file", "lab.toml", "--name", "lab_linux",
      "--version", "1.0", "--arch", "aarch64", "--description", "Linux",
      "--url", "https://example.com/lab_linux-1.0.tar.gz", "--key", plain.secretKey,
    ]); // prettier-ignore
    assert.equal(add.code, 0, add.stderr);
    assert.match(add.stderr, /^signed lab\.toml with key [0-9A-F]{1,16}: lab\.toml\.minisig$/m);
    assert.ok((await readFile(file("lab.toml"), "utf8")).includes(sha256("the archive bytes")));
    assert.equal(
      (await minisignVerify(file("lab.toml"), file("lab.toml.minisig"), plain.publicKey)).code,
      0,
    );
    const before = await readFile(file("lab.toml.minisig"), "utf8");

    const publish = await cli([
      "publish", "image.tar.gz", "--name", "lab_rtos", "--version", "1.0", "--arch", "riscv64",
      "--description", "RTOS", "--url", "https://example.com/lab_rtos-1.0.tar.gz",
      "--registry-file", "lab.toml", "--key", plain.secretKey,
    ]); // prettier-ignore
    assert.equal(publish.code, 0, publish.stderr);
    const after = await readFile(file("lab.toml.minisig"), "utf8");
    assert.notEqual(after, before);
    assert.equal(
      (await minisignVerify(file("lab.toml"), file("lab.toml.minisig"), plain.publicKey)).code,
      0,
    );
    assert.equal((await verdictOf("lab.toml", plain.publicKey)).status, "verified");
  });

  it("refuses bad inputs with one error line, writing no signature", async () => {
    await writeFile(file("junk.key"), "untrusted comment: a key?\nRWQ not base64\n");
    await writeFile(
      file("broken.toml"),
      registryToml([{ name: "a/b", url: "https://x/a", sha256: "0".repeat(64) }]),
    );
    const cases: [string[], number, RegExp][] = [
      [
        ["registry", "sign", "broken.toml", "--key", plain.secretKey],
        1,
        /^error: broken\.toml:\d+: images\[0\]: name "a\/b"/,
      ],
      [
        ["registry", "sign", "missing.toml", "--key", plain.secretKey],
        1,
        /^error: missing\.toml: no such file$/,
      ],
      [
        ["registry", "sign", "v0.0.25.toml", "--key", plain.publicKeyFile],
        1,
        /not a minisign secret key \(it is a public key\)$/,
      ],
      [
        ["registry", "sign", "v0.0.25.toml", "--key", "nokey"],
        2,
        /^error: secret key nokey: no such file$/,
      ],
      [
        ["registry", "sign", "v0.0.25.toml", "--key", "junk.key"],
        1,
        /^error: secret key junk\.key: not a minisign secret key$/,
      ],
      [
        ["registry", "sign", "v0.0.25.toml", "--key", "/dev/zero"],
        2,
        /a character device, not a regular file$/,
      ],
    ];
    for (const [args, code, expected] of cases) {
      const run = await cli(args);
      assert.equal(run.code, code, `${args.join(" ")}: ${run.stderr}`);
      assert.match(errorLine(run.stderr), expected);
    }
    const names = await readdir(dir.path);
    assert.ok(!names.includes("broken.toml.minisig") && !names.includes("missing.toml.minisig"));
  });

  it("reads the password from a terminal without echoing it", async () => {
    // `script` gives the CLI a terminal; the password is typed once the prompt is shown.
    const command = `${JSON.stringify(process.execPath)} ${JSON.stringify(CLI)} registry sign v0.0.25.toml --key quick.key`;
    const child = spawn("script", ["-qec", command, "/dev/null"], { cwd: dir.path, env: cliEnv() });
    let screen = "";
    let typed = false;
    child.stdout.on("data", (data: Buffer) => {
      screen += data.toString();
      if (!typed && screen.includes("Password for")) {
        typed = true;
        child.stdin.write("open sesamX\x7fe\r");
      }
    });
    const code = await new Promise((resolve) => child.on("close", resolve));
    assert.equal(code, 0, screen);
    assert.doesNotMatch(screen, /sesam/, "the password is not echoed");
    assert.match(screen, /signed v0\.0\.25\.toml with key/);
    assert.equal(
      (await minisignVerify(file("v0.0.25.toml"), file("v0.0.25.toml.minisig"), quick.publicKey))
        .code,
      0,
    );
  });
});
