/**
 * Verifying registry files (src/registry/signature.ts): the real axvisor-guest registry files
 * signed by the minisign CLI and by this tool, then served as a mirror would tamper with them,
 * and the rollback rule.
 */
import assert from "node:assert/strict";
import { copyFile, readFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import fc from "fast-check";
import { generateSecretKey } from "../../src/minisign-key.js";
import {
  makePublicKey,
  parsePublicKey,
  signContent,
  type PublicKey,
  type SigningKey,
} from "../../src/minisign.js";
import {
  acceptSignatures,
  acceptedSignatureKey,
  checkRollback,
  fileNameOf,
  parseTrustedComment,
  signatureLocation,
  trustedCommentFor,
  verifyRegistryFile,
  type AcceptedSignatures,
  type SignatureVerdict,
} from "../../src/registry/signature.js";
import { tempDir } from "../helpers/images.js";
import {
  NO_MINISIGN,
  minisignKeyPair,
  minisignSign,
  type MinisignKeyPair,
} from "../helpers/minisign.js";
import { FIXTURES } from "./support.js";

const BASE =
  "https://raw.githubusercontent.com/arceos-hypervisor/axvisor-guest/refs/heads/main/registry/";
const ROOT = `${BASE}default.toml`;
const RELEASE = `${BASE}v0.0.26.toml`;
/** 2026-04-10, after the fixture's newest release. */
const SIGNED_AT = 1_775_800_000;
const NOW = SIGNED_AT + 3600;

/** The message of a refused verdict (failing the test for another verdict). */
function refusal(verdict: SignatureVerdict): string {
  assert.equal(verdict.status, "refused", JSON.stringify(verdict));
  const { message } = verdict as Extract<SignatureVerdict, { status: "refused" }>;
  assert.doesNotMatch(message, /[\n\r]/);
  return message;
}

/** `text` with the first sha256 of the file changed by one digit. */
function oneShaChanged(text: string): string {
  return text.replace(/sha256 = "(.)/, (_, c: string) => `sha256 = "${c === "0" ? "1" : "0"}`);
}

describe("verifying registry files", () => {
  let ours: SigningKey;
  let rotated: SigningKey;
  let release: Buffer;
  let root: Buffer;
  /** `content` signed by `key` as `registry sign` does, for the file named `name`. */
  const sign = (content: Buffer, key: SigningKey, name: string, at = SIGNED_AT) =>
    Buffer.from(signContent(content, key, trustedCommentFor(name, at)));
  const verify = (
    file: string,
    content: Buffer,
    signature: Buffer | undefined,
    keys: PublicKey[],
    required = false,
  ) => verifyRegistryFile({ file, content, signature, keys, required, now: NOW });
  before(async () => {
    [ours, rotated] = await Promise.all([
      generateSecretKey(undefined).then((k) => k.key),
      generateSecretKey(undefined).then((k) => k.key),
    ]);
    release = await readFile(join(FIXTURES, "v0.0.26.toml"));
    root = await readFile(join(FIXTURES, "default.toml"));
  });

  it("puts a file's signature beside it, as minisign does", () => {
    assert.equal(signatureLocation(RELEASE), `${RELEASE}.minisig`);
    assert.equal(
      signatureLocation("https://h/r.toml?ref=main#x"),
      "https://h/r.toml.minisig?ref=main",
    );
    assert.equal(signatureLocation("/srv/registry/r.toml"), "/srv/registry/r.toml.minisig");
    assert.equal(fileNameOf("https://h/dir/my%20registry.toml?x=1"), "my registry.toml");
    assert.equal(fileNameOf("/srv/registry/r.toml"), "r.toml");
  });

  it("verifies a file signed by a pinned key: key id and trusted timestamp", () => {
    const verdict = verify(RELEASE, release, sign(release, ours, "v0.0.26.toml"), [ours.publicKey]);
    assert.deepEqual(verdict, {
      status: "verified",
      file: RELEASE,
      keyId: ours.publicKey.keyId,
      timestamp: SIGNED_AT,
    });
  });

  it("refuses a tampered file (one sha256 changed) served with its old signature", () => {
    const signature = sign(release, ours, "v0.0.26.toml");
    const tampered = Buffer.from(oneShaChanged(release.toString()));
    assert.notDeepEqual(tampered, release);
    const message = refusal(verify(RELEASE, tampered, signature, [ours.publicKey]));
    assert.equal(
      message,
      `${RELEASE}: the content does not match its signature (${RELEASE}.minisig): changed after it was signed`,
    );
  });

  it("refuses a signature by a key not pinned, naming both; accepts any of several pinned keys", () => {
    const signature = sign(release, rotated, "v0.0.26.toml");
    const message = refusal(verify(RELEASE, release, signature, [ours.publicKey]));
    assert.match(
      message,
      new RegExp(`signed by key ${rotated.publicKey.keyId}, which is not pinned`),
    );
    assert.match(message, new RegExp(`\\(pinned: ${ours.publicKey.keyId}\\)$`));
    // Key rotation: the old and the new key pinned at once.
    const both = [ours.publicKey, rotated.publicKey];
    assert.equal(verify(RELEASE, release, signature, both).status, "verified");
    assert.equal(
      verify(RELEASE, release, sign(release, ours, "v0.0.26.toml"), both).status,
      "verified",
    );
  });

  it("tries every pinned key with the signature's key id: two pinned keys may share one", () => {
    // Key ids are chosen by whoever makes the key: any key can claim another's.
    const twin: SigningKey = {
      publicKey: makePublicKey(ours.publicKey.keyNum, rotated.publicKey.raw),
      privateKey: rotated.privateKey,
    };
    const both = [ours.publicKey, twin.publicKey];
    const byTwin = sign(release, twin, "v0.0.26.toml");
    assert.deepEqual(verify(RELEASE, release, byTwin, both), {
      status: "verified",
      file: RELEASE,
      keyId: ours.publicKey.keyId,
      timestamp: SIGNED_AT,
    });
    assert.equal(
      verify(RELEASE, release, sign(release, ours, "v0.0.26.toml"), both).status,
      "verified",
    );
    const tampered = Buffer.from(oneShaChanged(release.toString()));
    assert.match(refusal(verify(RELEASE, tampered, byTwin, both)), /does not match its signature/);
  });

  it("refuses an unsigned file when a key is pinned or signatures are required", () => {
    assert.match(
      refusal(verify(RELEASE, release, undefined, [ours.publicKey])),
      /^https:\/\/raw\.githubusercontent\.com\/.*\/v0\.0\.26\.toml: not signed \(no .*v0\.0\.26\.toml\.minisig\)/,
    );
    assert.match(
      refusal(verify(RELEASE, release, undefined, [], true)),
      /: signatures are required, but no key is pinned for this registry$/,
    );
    // Nothing pinned, nothing required: taken as it is, signature or not (not even parsed).
    assert.deepEqual(verify(RELEASE, release, undefined, []), {
      status: "unverified",
      file: RELEASE,
    });
    assert.equal(verify(RELEASE, release, Buffer.from("junk"), []).status, "unverified");
  });

  it("refuses one signed file of a registry served in place of another", () => {
    // Both files are signed by the same key: the root's signature, with the root's bytes, at
    // the release's URL.
    const message = refusal(
      verify(RELEASE, root, sign(root, ours, "default.toml"), [ours.publicKey]),
    );
    assert.match(
      message,
      /signature was made for a file named "default\.toml", not "v0\.0\.26\.toml"$/,
    );
  });

  it("refuses a signature without a trusted timestamp, or one from the future", () => {
    const custom = Buffer.from(signContent(release, ours, "signed by the release bot"));
    assert.match(
      refusal(verify(RELEASE, release, custom, [ours.publicKey])),
      /\.minisig: no timestamp in the trusted comment "signed by the release bot"$/,
    );
    const future = sign(release, ours, "v0.0.26.toml", NOW + 2 * 86_400);
    assert.match(
      refusal(verify(RELEASE, release, future, [ours.publicKey])),
      /: signed at 2026-04-1\dT\d\d:\d\d:\d\dZ, more than a day in the future$/,
    );
    // Within a day of skew: accepted.
    const skewed = sign(release, ours, "v0.0.26.toml", NOW + 3600);
    assert.equal(verify(RELEASE, release, skewed, [ours.publicKey]).status, "verified");
  });

  it("reads the trusted comment's fields as minisign writes them", () => {
    assert.deepEqual(parseTrustedComment("timestamp:1\tfile:a b.toml\thashed"), {
      timestamp: 1,
      file: "a b.toml",
    });
    assert.deepEqual(parseTrustedComment("timestamp:1\ttimestamp:2"), {
      problem: "two timestamps",
    });
    assert.deepEqual(parseTrustedComment("file:a\tfile:b"), { problem: "two file names" });
    assert.deepEqual(parseTrustedComment("timestamp:-5"), {
      problem: 'timestamp "-5" is not unix seconds',
    });
    assert.deepEqual(parseTrustedComment("timestamp:1e9"), {
      problem: 'timestamp "1e9" is not unix seconds',
    });
  });

  it("answers with a verdict, never an exception, whatever the signature bytes", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 400 }), (bytes) => {
        const verdict = verify(RELEASE, release, Buffer.from(bytes), [ours.publicKey]);
        assert.equal(refusal(verdict).length > 0, true);
      }),
      { numRuns: 500 },
    );
  });
});

describe("registry files signed with the minisign CLI", { skip: NO_MINISIGN }, () => {
  let dir: { path: string; cleanup: () => Promise<void> };
  let publisher: MinisignKeyPair;
  let key: PublicKey;
  before(async () => {
    dir = await tempDir();
    publisher = await minisignKeyPair(dir.path, "publisher");
    key = parsePublicKey(publisher.publicKey, "key");
    for (const name of ["default.toml", "v0.0.26.toml"]) {
      await copyFile(join(FIXTURES, name), join(dir.path, name));
    }
  });
  after(() => dir.cleanup());

  it("verifies minisign -S signatures of the real registry files, with their timestamp", async () => {
    for (const name of ["default.toml", "v0.0.26.toml"]) {
      const path = join(dir.path, name);
      const signature = await readFile(await minisignSign(path, publisher));
      const before = Math.floor(Date.now() / 1000);
      const verdict = verifyRegistryFile({
        file: `${BASE}${name}`,
        content: await readFile(path),
        signature,
        keys: [key],
      });
      assert.equal(verdict.status, "verified", JSON.stringify(verdict));
      const { timestamp } = verdict as Extract<SignatureVerdict, { status: "verified" }>;
      assert.ok(Math.abs(timestamp - before) < 600, "minisign's timestamp is its clock's");
      // Served by a mirror with one sha256 changed, or an include pointed elsewhere: refused.
      const text = (await readFile(path)).toString();
      const tampered = Buffer.from(
        name === "default.toml"
          ? text.replace(/url = "[^"]*"/, 'url = "https://evil.example/r.toml"')
          : oneShaChanged(text),
      );
      assert.notEqual(tampered.toString(), text);
      const file = `https://mirror.example/axvisor/${name}`;
      assert.match(
        refusal(verifyRegistryFile({ file, content: tampered, signature, keys: [key] })),
        /does not match its signature/,
      );
    }
  });

  it("refuses minisign -t signatures without a timestamp", async () => {
    const path = join(dir.path, "v0.0.26.toml");
    const signature = await minisignSign(path, publisher, {
      signature: `${path}.custom`,
      trustedComment: "release v0.0.26",
    });
    const verdict = verifyRegistryFile({
      file: RELEASE,
      content: await readFile(path),
      signature: await readFile(signature),
      keys: [key],
    });
    assert.match(refusal(verdict), /no timestamp in the trusted comment "release v0\.0\.26"/);
  });
});

describe("the rollback rule", () => {
  const KEY = "F7073FCE3D2CAC77";
  const verified = (file: string, timestamp: number): SignatureVerdict => ({
    status: "verified",
    file,
    keyId: KEY,
    timestamp,
  });
  const accepted: AcceptedSignatures = new Map([[RELEASE, { keyId: KEY, timestamp: 2000 }]]);

  it("refuses a signed file older than the one accepted for the same location", () => {
    const message = refusal(checkRollback(verified(RELEASE, 1999), accepted));
    assert.equal(
      message,
      `${RELEASE}: signed at 1970-01-01T00:33:19Z, before the copy already accepted ` +
        `(signed at 1970-01-01T00:33:20Z by key ${KEY}): refused as a rollback`,
    );
  });

  it("passes the same signing, a newer one, another file, and verdicts that are not verified", () => {
    assert.equal(checkRollback(verified(RELEASE, 2000), accepted).status, "verified");
    assert.equal(checkRollback(verified(RELEASE, 2001), accepted).status, "verified");
    assert.equal(checkRollback(verified(ROOT, 1), accepted).status, "verified");
    const unverified: SignatureVerdict = { status: "unverified", file: RELEASE };
    assert.equal(checkRollback(unverified, accepted), unverified);
  });

  it("records the newest verified signature of each file, without credentials", () => {
    const secret = RELEASE.replace("https://", "https://user:token@");
    assert.equal(acceptedSignatureKey(secret), RELEASE);
    const next = acceptSignatures(accepted, [
      verified(secret, 3000),
      verified(ROOT, 10),
      verified(ROOT, 5),
      { status: "unverified", file: `${BASE}v0.0.25.toml` },
      { status: "refused", file: `${BASE}v0.0.24.toml`, message: "x" },
    ]);
    assert.deepEqual(
      [...next],
      [
        [RELEASE, { keyId: KEY, timestamp: 3000 }],
        [ROOT, { keyId: KEY, timestamp: 10 }],
      ],
    );
    assert.equal(accepted.get(RELEASE)?.timestamp, 2000, "the old state is not changed");
    // A replay of the copy accepted before is now a rollback, whatever credentials it comes with.
    assert.equal(checkRollback(verified(secret, 2000), next).status, "refused");
  });
});
