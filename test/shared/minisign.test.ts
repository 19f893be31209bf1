/**
 * minisign's formats (src/minisign.ts, src/minisign-key.ts) against the real
 * minisign CLI: its keys and signatures read here, ours accepted by `minisign -V` and `-S`, and
 * every malformed key or signature refused with one line naming the file.
 */
import assert from "node:assert/strict";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import fc from "fast-check";
import { AxError } from "../../src/errors.js";
import { generateSecretKey, openSecretKey, parseSecretKeyFile } from "../../src/minisign-key.js";
import {
  formatPublicKeyFile,
  parsePublicKey,
  parseSignature,
  signContent,
  verifySignature,
} from "../../src/minisign.js";
import { tempDir } from "../helpers/images.js";
import {
  NO_MINISIGN,
  QUICK_KDF,
  minisignKeyPair,
  minisignSign,
  minisignVerify,
  type MinisignKeyPair,
} from "../helpers/minisign.js";

/** The error `action` throws: an AxError whose message is one line. */
function oneLine(action: () => unknown): string {
  try {
    action();
  } catch (err) {
    assert.ok(err instanceof AxError, `an AxError, not ${String(err)}`);
    assert.doesNotMatch(err.message, /[\n\r]/);
    return err.message;
  }
  assert.fail("no error");
}

const BASE64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/** `encoded` (ending in one `=`) with a padding bit set: the same bytes to a lenient decoder. */
function paddingBitSet(encoded: string): string {
  const last = encoded.at(-2)!;
  return `${encoded.slice(0, -2)}${BASE64[BASE64.indexOf(last) ^ 1]!}=`;
}

describe("minisign keys and signatures, with the minisign CLI", { skip: NO_MINISIGN }, () => {
  let dir: { path: string; cleanup: () => Promise<void> };
  let plain: MinisignKeyPair;
  let other: MinisignKeyPair;
  let file: string;
  const content = Buffer.from('[[includes]]\nurl = "v0.0.26.toml"\n');
  before(async () => {
    dir = await tempDir();
    [plain, other] = await Promise.all([
      minisignKeyPair(dir.path, "plain"),
      minisignKeyPair(dir.path, "other"),
    ]);
    file = join(dir.path, "registry.toml");
    await writeFile(file, content);
  });
  after(() => dir.cleanup());

  it("reads minisign's public keys, as a .pub file and as the -P string, with its key id", async () => {
    const pubFile = await readFile(plain.publicKeyFile, "utf8");
    const fromFile = parsePublicKey(pubFile, "plain.pub");
    const fromString = parsePublicKey(plain.publicKey, "key");
    assert.equal(fromFile.text, plain.publicKey);
    assert.equal(fromString.keyId, fromFile.keyId);
    // minisign names the key id in the .pub file's comment.
    assert.match(pubFile, new RegExp(`minisign public key ${fromFile.keyId}\n`));
    assert.equal(formatPublicKeyFile(fromFile), pubFile);
  });

  it("verifies minisign's signatures, prehashed and legacy; refuses other content and keys", async () => {
    const key = parsePublicKey(plain.publicKey, "key");
    for (const legacy of [false, true]) {
      const path = await minisignSign(file, plain, { legacy, signature: `${file}.${legacy}` });
      const signature = parseSignature(await readFile(path), path);
      assert.equal(signature.algorithm, legacy ? "Ed" : "ED");
      assert.match(signature.trustedComment, /^timestamp:\d+\tfile:registry\.toml/);
      assert.equal(verifySignature(content, signature, key), undefined);
      const changed = Buffer.from(content.toString().replace("26", "25"));
      assert.equal(verifySignature(changed, signature, key), "content");
      assert.equal(
        verifySignature(content, signature, parsePublicKey(other.publicKey, "o")),
        "key",
      );
    }
  });

  it("refuses a signature whose trusted comment was edited (timestamp moved forward)", async () => {
    const path = await minisignSign(file, plain, { signature: `${file}.edited` });
    const text = (await readFile(path, "utf8")).replace(/timestamp:(\d+)/, (_, t: string) => {
      return `timestamp:${Number(t) + 1000}`;
    });
    const signature = parseSignature(Buffer.from(text), "edited");
    assert.equal(
      verifySignature(content, signature, parsePublicKey(plain.publicKey, "k")),
      "trusted-comment",
    );
  });

  it("signs with minisign's secret key (-W) what minisign -V accepts", async () => {
    const key = await openSecretKey(
      parseSecretKeyFile(await readFile(plain.secretKey), "plain.key"),
      undefined,
      "plain.key",
    );
    assert.equal(key.publicKey.text, plain.publicKey);
    const path = `${file}.ours`;
    await writeFile(
      path,
      signContent(content, key, "timestamp:1767225600\tfile:registry.toml\thashed"),
    );
    const run = await minisignVerify(file, path, plain.publicKey);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /Trusted comment: timestamp:1767225600\tfile:registry\.toml\thashed/);
    await writeFile(file + ".changed", "changed");
    const refused = await minisignVerify(file + ".changed", path, plain.publicKey);
    assert.notEqual(refused.code, 0);
  });

  it("makes keys minisign signs with, encrypted or not; reads back what minisign signs", async () => {
    for (const password of [undefined, "correct horse"]) {
      const made = await generateSecretKey(password, QUICK_KDF);
      const pair: MinisignKeyPair = {
        secretKey: join(dir.path, `made-${password === undefined}.key`),
        publicKeyFile: join(dir.path, `made-${password === undefined}.pub`),
        publicKey: made.key.publicKey.text,
        password,
      };
      await writeFile(pair.secretKey, made.secretKeyFile);
      const path = await minisignSign(file, pair, { signature: `${file}.made` });
      const signature = parseSignature(await readFile(path), path);
      assert.equal(signature.keyId, made.key.publicKey.keyId);
      assert.equal(verifySignature(content, signature, made.key.publicKey), undefined);
      // And the key file opens here again.
      const opened = await openSecretKey(
        parseSecretKeyFile(Buffer.from(made.secretKeyFile), "made"),
        password,
        "made",
      );
      assert.equal(opened.publicKey.text, made.key.publicKey.text);
    }
  });

  it("opens an encrypted key with its password only", async () => {
    // minisign's own encrypted keys (1 GiB of scrypt) are opened in test/cli/sign.test.ts.
    const quick = parseSecretKeyFile(
      Buffer.from((await generateSecretKey("right", QUICK_KDF)).secretKeyFile),
      "quick.key",
    );
    assert.equal(quick.encrypted, true);
    assert.deepEqual(quick.limits, QUICK_KDF);
    await assert.rejects(openSecretKey(quick, undefined, "quick.key"), /a password is needed/);
    await assert.rejects(openSecretKey(quick, "wrong", "quick.key"), {
      message: "quick.key: wrong password for this key",
    });
    assert.ok(await openSecretKey(quick, "right", "quick.key"));
  });
});

describe("key ids", () => {
  it("prints a key id as minisign does: no leading zeros", () => {
    // What minisign 0.11 wrote for a key whose id starts with a zero nibble (seen in CI: a
    // random key fails the CLI test above one time in sixteen when the ids are zero-padded).
    const text = "RWTMqIl3mJlNBdo6ERvLKL9QcnTluZSvojreKKn+BAJI/+5zbBk5frMb";
    const key = parsePublicKey(text, "key");
    assert.equal(key.keyId, "54D99987789A8CC");
    assert.equal(
      formatPublicKeyFile(key),
      `untrusted comment: minisign public key 54D99987789A8CC\n${text}\n`,
    );
  });
});

describe("hostile keys and signatures", () => {
  let valid: string;
  let key: Awaited<ReturnType<typeof generateSecretKey>>["key"];
  const content = Buffer.from("registry bytes\n");
  before(async () => {
    key = (await generateSecretKey(undefined)).key;
    valid = signContent(content, key, "timestamp:1767225600\tfile:registry.toml\thashed");
  });

  it("refuses each malformed signature with one line naming the file", () => {
    const lines = valid.split("\n");
    const swap = (i: number, line: string) => lines.map((l, j) => (j === i ? line : l)).join("\n");
    const sigLine = Buffer.from(lines[1]!, "base64");
    const cases: [string, string | Buffer, RegExp][] = [
      ["empty", "", /4 lines expected, found 0/],
      ["three lines", lines.slice(0, 3).join("\n"), /4 lines expected, found 3/],
      ["a fifth line", `${valid}extra\n`, /4 lines expected, found 5/],
      ["no untrusted comment", swap(0, "comment: x"), /line 1: .*untrusted comment: /],
      ["not base64", swap(1, "!".repeat(100)), /line 2: not a minisign signature/],
      ["short", swap(1, lines[1]!.slice(0, 96)), /line 2: not a minisign signature/],
      [
        "non-canonical base64",
        swap(1, paddingBitSet(lines[1]!)),
        /line 2: not a minisign signature/,
      ],
      [
        "algorithm Xy",
        swap(1, Buffer.concat([Buffer.from("Xy"), sigLine.subarray(2)]).toString("base64")),
        /line 2: unsupported signature algorithm/,
      ],
      ["no trusted comment", swap(2, "timestamp:1"), /line 3: no trusted comment/],
      [
        "escape in trusted comment",
        swap(2, "trusted comment: a\x1b[2Jb"),
        /line 3: .*control characters/,
      ],
      [
        "huge trusted comment",
        swap(2, `trusted comment: ${"x".repeat(9000)}`),
        /line 3: .*longer than/,
      ],
      ["bad global signature", swap(3, "AAAA"), /line 4: not a minisign global signature/],
      ["a carriage return inside", swap(0, "untrusted comment: a\rb"), /carriage return/],
      ["not UTF-8", Buffer.concat([Buffer.from(valid), Buffer.from([0xff])]), /not UTF-8/],
      ["a byte-order mark", `\ufeff${valid}`, /line 1/],
      ["17 KiB", "x".repeat(17 * 1024), /larger than 16384 bytes/],
    ];
    for (const [label, text, expected] of cases) {
      const message = oneLine(() => parseSignature(Buffer.from(text), "reg.toml.minisig"));
      assert.match(message, /^reg\.toml\.minisig: /, label);
      assert.match(message, expected, label);
    }
    // CRLF line ends (a signature that went through a Windows checkout) still verify.
    const crlf = parseSignature(Buffer.from(valid.replaceAll("\n", "\r\n")), "crlf");
    assert.equal(verifySignature(content, crlf, key.publicKey), undefined);
  });

  it("refuses each malformed public key with one line naming it", () => {
    const raw = Buffer.from(key.publicKey.text, "base64");
    const cases: [string, RegExp][] = [
      ["", /not a minisign public key/],
      ["RWQ", /not a minisign public key/],
      [key.publicKey.text.slice(0, -4), /not a minisign public key/],
      [
        Buffer.concat([Buffer.from("Xd"), raw.subarray(2)]).toString("base64"),
        /unsupported public key algorithm/,
      ],
      [`comment\n${key.publicKey.text}`, /first line must start "untrusted comment: "/],
      [`untrusted comment: a\n${key.publicKey.text}\nmore`, /more than two lines/],
      ["x".repeat(5000), /too long/],
      [
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl",
        /not a minisign public key/,
      ],
    ];
    for (const [text, expected] of cases) {
      const message = oneLine(() => parsePublicKey(text, "trust key"));
      assert.match(message, /^trust key: /);
      assert.match(message, expected, text.slice(0, 40));
    }
  });

  it("refuses malformed secret keys, and scrypt parameters past 1 GiB before deriving", async () => {
    const made = await generateSecretKey("pw", QUICK_KDF);
    const [comment, encoded] = made.secretKeyFile.trim().split("\n") as [string, string];
    const data = Buffer.from(encoded, "base64");
    const withBytes = (offset: number, bytes: Buffer) => {
      const copy = Buffer.from(data);
      bytes.copy(copy, offset);
      return Buffer.from(`${comment}\n${copy.toString("base64")}\n`);
    };
    const huge = Buffer.alloc(8);
    huge.writeBigUInt64LE(1n << 40n);
    const cases: [Buffer, RegExp][] = [
      [
        Buffer.from(formatPublicKeyFile(made.key.publicKey)),
        /not a minisign secret key \(it is a public key\)/,
      ],
      [Buffer.from(`${comment}\n${encoded.slice(0, 100)}\n`), /not a minisign secret key$/],
      [withBytes(0, Buffer.from("Xy")), /unsupported signature algorithm/],
      [withBytes(2, Buffer.from("Ar")), /unsupported key derivation function/],
      [withBytes(4, Buffer.from("B3")), /unsupported checksum algorithm/],
    ];
    for (const [bytes, expected] of cases) {
      assert.match(
        oneLine(() => parseSecretKeyFile(bytes, "sk")),
        expected,
      );
    }
    // A memlimit of 1 TiB (and opslimit to match) is refused, not allocated.
    const greedy = parseSecretKeyFile(withBytes(6 + 32, Buffer.concat([huge, huge])), "sk");
    await assert.rejects(
      openSecretKey(greedy, "pw", "sk"),
      /sk: key derivation parameters out of range/,
    );
    // An unencrypted key whose public half is not its seed's.
    const plain = await generateSecretKey(undefined);
    const [c2, e2] = plain.secretKeyFile.trim().split("\n") as [string, string];
    const bytes = Buffer.from(e2, "base64");
    bytes[bytes.length - 40] = bytes[bytes.length - 40]! ^ 1;
    const broken = parseSecretKeyFile(Buffer.from(`${c2}\n${bytes.toString("base64")}\n`), "sk");
    await assert.rejects(
      openSecretKey(broken, undefined, "sk"),
      /public half does not match its seed/,
    );
  });

  it("a mutated signature file either fails to parse or verify, or signs the same thing", () => {
    const original = parseSignature(Buffer.from(valid), "sig");
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(valid.length - 1), fc.integer({ min: 0, max: 255 })), {
          minLength: 1,
          maxLength: 4,
        }),
        (edits) => {
          const bytes = Buffer.from(valid);
          for (const [at, value] of edits) bytes[at] = value;
          let parsed;
          try {
            parsed = parseSignature(bytes, "sig");
          } catch (err) {
            assert.ok(err instanceof AxError);
            return;
          }
          if (verifySignature(content, parsed, key.publicKey) !== undefined) return;
          assert.ok(parsed.signature.equals(original.signature));
          assert.equal(parsed.trustedComment, original.trustedComment);
          assert.ok(parsed.globalSignature.equals(original.globalSignature));
        },
      ),
      { numRuns: 2000 },
    );
  });
});
