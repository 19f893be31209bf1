/**
 * minisign's public keys and signatures (https://jedisct1.github.io/minisign/), read and written
 * exactly as minisign 0.11 reads and writes them, so that a key or a signature made by either
 * tool works with the other. Ed25519 and the BLAKE2b-512 prehash are Node's own (OpenSSL).
 *
 * - A public key is `base64("Ed" || key id (8 bytes) || Ed25519 public key (32))`, alone (what
 *   `minisign -P` takes) or as the second line of a `.pub` file under an untrusted comment.
 * - A signature file has four lines: `untrusted comment: ...`, `base64(algorithm || key id ||
 *   signature)`, `trusted comment: ...`, `base64(global signature)`. The algorithm is `ED`
 *   (the signature covers the BLAKE2b-512 of the file; minisign's default since 0.10) or `Ed`
 *   (legacy: the file itself). The global signature covers the signature and the trusted comment,
 *   so the trusted comment (`timestamp:<unix>\tfile:<name>\thashed` by default) is authenticated.
 *
 * Everything read here may be hostile: sizes are bounded before anything is decoded, base64 must
 * be canonical, lengths and algorithm bytes exact, and comments UTF-8 without control characters.
 * Each problem is one line naming the file.
 */
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  sign,
  verify,
  type KeyObject,
} from "node:crypto";
import { AxError } from "./errors.js";

/** The file name suffix of a signature: `registry.toml.minisig` signs `registry.toml`. */
export const SIGNATURE_SUFFIX = ".minisig";

/** The largest signature file read: minisign's comment limits (1 KiB, 8 KiB) and room to spare. */
export const MAX_SIGNATURE_BYTES = 16 * 1024;

const ALG_ED25519 = "Ed";
const ALG_PREHASHED = "ED";
const KEY_ID_BYTES = 8;
const PUBLIC_KEY_BYTES = 32;
const SIGNATURE_BYTES = 64;
const UNTRUSTED_PREFIX = "untrusted comment: ";
const TRUSTED_PREFIX = "trusted comment: ";
/** minisign reads an untrusted comment line into 1024 bytes, its newline included. */
const MAX_UNTRUSTED_COMMENT_BYTES = 1024 - UNTRUSTED_PREFIX.length - 1;
/** minisign refuses to write a trusted comment of 8192 bytes with its prefix. */
const MAX_TRUSTED_COMMENT_BYTES = 8192 - TRUSTED_PREFIX.length - 1;
/** The largest public key text parsed: a `.pub` file with its longest comment. */
const MAX_PUBLIC_KEY_TEXT = 2048;

/** DER prefixes turning raw Ed25519 keys into the SPKI / PKCS#8 forms Node imports. */
const SPKI_ED25519 = Buffer.from("302a300506032b6570032100", "hex");
const PKCS8_ED25519 = Buffer.from("302e020100300506032b657004220420", "hex");

/** A minisign public key. */
export interface PublicKey {
  /**
   * The key id as minisign prints it: up to 16 upper-case hex digits, no leading zeros
   * (`F7073FCE3D2CAC77`).
   */
  keyId: string;
  /** The key id's 8 bytes, as stored in keys and signatures. */
  keyNum: Buffer;
  /** The raw 32-byte Ed25519 public key. */
  raw: Buffer;
  /** The key as `minisign -P` takes it (`RW...`, 56 characters). */
  text: string;
  /** The key for Node's crypto. */
  key: KeyObject;
}

/** A minisign secret key, decrypted: what signs. */
export interface SigningKey {
  /** Its public half (with the same key id). */
  publicKey: PublicKey;
  /** The Ed25519 private key for Node's crypto. */
  privateKey: KeyObject;
}

/** A parsed signature file. */
export interface Signature {
  /** `ED`: over the file's BLAKE2b-512; `Ed`: over the file itself (legacy). */
  algorithm: typeof ALG_ED25519 | typeof ALG_PREHASHED;
  /** The key id of the key that made it (as minisign prints it) and its bytes. */
  keyId: string;
  keyNum: Buffer;
  /** The 64-byte Ed25519 signature of the file (or of its hash). */
  signature: Buffer;
  /** The trusted comment (without its prefix), covered by {@link Signature.globalSignature}. */
  trustedComment: string;
  /** The 64-byte Ed25519 signature of `signature || trustedComment`. */
  globalSignature: Buffer;
}

/**
 * The key id of `keyNum` as minisign prints it: the bytes as a little-endian 64-bit number, in
 * upper-case hex without leading zeros (`printf("%" PRIX64)`).
 */
function keyIdOf(keyNum: Buffer): string {
  return Buffer.from(keyNum)
    .reverse()
    .toString("hex")
    .toUpperCase()
    .replace(/^0+(?=.)/, "");
}

/** `text` decoded as canonical base64 (what `Buffer.toString("base64")` writes), or undefined. */
export function strictBase64(text: string): Buffer | undefined {
  if (text.length === 0 || text.length % 4 !== 0 || !/^[A-Za-z0-9+/]+={0,2}$/.test(text)) {
    return undefined;
  }
  const bytes = Buffer.from(text, "base64");
  return bytes.toString("base64") === text ? bytes : undefined;
}

/** Problems of a comment: too long, or holding control characters (a tab is allowed). */
function commentProblem(comment: string, maxBytes: number): string | undefined {
  if (Buffer.byteLength(comment) > maxBytes) return `is longer than ${maxBytes} bytes`;
  // eslint-disable-next-line no-control-regex -- exactly what this looks for
  if (/[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]/u.test(comment)) {
    return "holds control characters";
  }
  return undefined;
}

/** The Ed25519 public key `raw` (32 bytes) for Node's crypto. */
function ed25519PublicKey(raw: Buffer): KeyObject {
  return createPublicKey({
    key: Buffer.concat([SPKI_ED25519, raw]),
    format: "der",
    type: "spki",
  });
}

/** The Ed25519 private key of the 32-byte `seed` for Node's crypto. */
export function ed25519PrivateKey(seed: Buffer): KeyObject {
  return createPrivateKey({
    key: Buffer.concat([PKCS8_ED25519, seed]),
    format: "der",
    type: "pkcs8",
  });
}

/** The raw 32-byte public key of an Ed25519 key object. */
export function rawPublicKey(key: KeyObject): Buffer {
  const der = createPublicKey(key).export({ format: "der", type: "spki" });
  return der.subarray(der.length - PUBLIC_KEY_BYTES);
}

/** The public key of `keyNum` and the raw Ed25519 key `raw`. */
export function makePublicKey(keyNum: Buffer, raw: Buffer): PublicKey {
  const text = Buffer.concat([Buffer.from(ALG_ED25519), keyNum, raw]).toString("base64");
  return { keyId: keyIdOf(keyNum), keyNum, raw, text, key: ed25519PublicKey(raw) };
}

/**
 * Parses a minisign public key: the base64 string alone (`RWQ...`, as `minisign -P` takes it) or
 * a `.pub` file (an untrusted comment line, then that string). `what` names it in errors.
 *
 * @throws AxError naming `what` when it is not an Ed25519 minisign public key.
 */
export function parsePublicKey(text: string, what: string): PublicKey {
  const fail = (problem: string) => new AxError(`${what}: ${problem}`);
  if (text.length > MAX_PUBLIC_KEY_TEXT) throw fail("not a minisign public key (too long)");
  const lines = text.replace(/\r?\n$/, "").split(/\r?\n/);
  if (lines.length === 2 && !lines[0]!.startsWith(UNTRUSTED_PREFIX)) {
    throw fail(`not a minisign public key file (its first line must start "${UNTRUSTED_PREFIX}")`);
  }
  if (lines.length > 2) throw fail("not a minisign public key (more than two lines)");
  const encoded = lines.at(-1)!.trim();
  const bytes = strictBase64(encoded);
  const expected = 2 + KEY_ID_BYTES + PUBLIC_KEY_BYTES;
  if (bytes === undefined || bytes.length !== expected) {
    throw fail(`not a minisign public key (base64 of ${expected} bytes, like RWQ..., expected)`);
  }
  if (bytes.subarray(0, 2).toString("latin1") !== ALG_ED25519) {
    throw fail('unsupported public key algorithm (minisign keys are Ed25519, "Ed")');
  }
  const keyNum = bytes.subarray(2, 2 + KEY_ID_BYTES);
  try {
    return makePublicKey(Buffer.from(keyNum), Buffer.from(bytes.subarray(2 + KEY_ID_BYTES)));
  } catch (err) {
    throw new AxError(`${what}: not a valid Ed25519 public key`, { cause: err });
  }
}

/** A `.pub` file for `key`, as `minisign -G` writes it. */
export function formatPublicKeyFile(key: PublicKey): string {
  return `${UNTRUSTED_PREFIX}minisign public key ${key.keyId}\n${key.text}\n`;
}

/** The lines of a small text file: UTF-8 (no BOM), `\n` or `\r\n` line ends. */
export function textLines(bytes: Uint8Array, what: string): string[] | AxError {
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    return new AxError(`${what}: not UTF-8 text`);
  }
  const lines = text.split("\n").map((line) => line.replace(/\r$/, ""));
  if (lines.at(-1) === "") lines.pop();
  if (lines.some((line) => line.includes("\r"))) {
    return new AxError(`${what}: a carriage return inside a line`);
  }
  return lines;
}

/**
 * Parses a signature file (`FILE.minisig`) of at most {@link MAX_SIGNATURE_BYTES}: its four lines
 * and nothing else. `what` names it in errors.
 *
 * @throws AxError naming `what` and the line at fault.
 */
export function parseSignature(bytes: Uint8Array, what: string): Signature {
  const fail = (problem: string) => new AxError(`${what}: ${problem}`);
  if (bytes.length > MAX_SIGNATURE_BYTES) {
    throw fail(`not a minisign signature (larger than ${MAX_SIGNATURE_BYTES} bytes)`);
  }
  const lines = textLines(bytes, what);
  if (lines instanceof AxError) throw lines;
  if (lines.length !== 4) {
    throw fail(`not a minisign signature (4 lines expected, found ${lines.length})`);
  }
  const [untrusted, encoded, trusted, encodedGlobal] = lines as [string, string, string, string];
  if (!untrusted.startsWith(UNTRUSTED_PREFIX)) {
    throw fail(`line 1: not a minisign signature (it must start "${UNTRUSTED_PREFIX}")`);
  }
  const untrustedProblem = commentProblem(
    untrusted.slice(UNTRUSTED_PREFIX.length),
    MAX_UNTRUSTED_COMMENT_BYTES,
  );
  if (untrustedProblem) throw fail(`line 1: the untrusted comment ${untrustedProblem}`);
  const sig = strictBase64(encoded);
  const expected = 2 + KEY_ID_BYTES + SIGNATURE_BYTES;
  if (sig === undefined || sig.length !== expected) {
    throw fail(`line 2: not a minisign signature (base64 of ${expected} bytes expected)`);
  }
  const algorithm = sig.subarray(0, 2).toString("latin1");
  if (algorithm !== ALG_ED25519 && algorithm !== ALG_PREHASHED) {
    throw fail(`line 2: unsupported signature algorithm (minisign signs with "ED" or "Ed")`);
  }
  if (!trusted.startsWith(TRUSTED_PREFIX)) {
    throw fail(`line 3: no trusted comment (the line must start "${TRUSTED_PREFIX}")`);
  }
  const trustedComment = trusted.slice(TRUSTED_PREFIX.length);
  const trustedProblem = commentProblem(trustedComment, MAX_TRUSTED_COMMENT_BYTES);
  if (trustedProblem) throw fail(`line 3: the trusted comment ${trustedProblem}`);
  const globalSignature = strictBase64(encodedGlobal);
  if (globalSignature === undefined || globalSignature.length !== SIGNATURE_BYTES) {
    throw fail(`line 4: not a minisign global signature (base64 of ${SIGNATURE_BYTES} bytes)`);
  }
  const keyNum = Buffer.from(sig.subarray(2, 2 + KEY_ID_BYTES));
  return {
    algorithm,
    keyId: keyIdOf(keyNum),
    keyNum,
    signature: Buffer.from(sig.subarray(2 + KEY_ID_BYTES)),
    trustedComment,
    globalSignature,
  };
}

/** What the Ed25519 signature of `content` covers under `algorithm`. */
function signedMessage(content: Uint8Array, algorithm: Signature["algorithm"]): Uint8Array {
  return algorithm === ALG_PREHASHED ? createHash("blake2b512").update(content).digest() : content;
}

/** `signature || trustedComment`: what the global signature covers. */
function globalMessage(signature: Buffer, trustedComment: string): Buffer {
  return Buffer.concat([signature, Buffer.from(trustedComment, "utf8")]);
}

/** Why `signature` does not verify `content` with `key`, or undefined when it does. */
export type VerifyProblem = "key" | "content" | "trusted-comment";

/**
 * Checks `signature` against `content` and `key`, as `minisign -V` does: the key ids must be
 * equal, the signature must cover `content` (or its BLAKE2b-512), and the global signature the
 * signature and the trusted comment.
 *
 * @returns undefined when it verifies, else what failed: `key` (another key made it), `content`
 *   (the content is not what was signed), `trusted-comment` (the comment was changed).
 */
export function verifySignature(
  content: Uint8Array,
  signature: Signature,
  key: PublicKey,
): VerifyProblem | undefined {
  if (!signature.keyNum.equals(key.keyNum)) return "key";
  const message = signedMessage(content, signature.algorithm);
  if (!verify(null, message, key.key, signature.signature)) return "content";
  const global = globalMessage(signature.signature, signature.trustedComment);
  if (!verify(null, global, key.key, signature.globalSignature)) return "trusted-comment";
  return undefined;
}

/**
 * The signature file of `content` by `key` with `trustedComment`, as `minisign -S` writes it
 * (prehashed, `ED`).
 *
 * @throws AxError when the trusted comment has a line break or a control character, or is longer
 *   than minisign reads.
 */
export function signContent(content: Uint8Array, key: SigningKey, trustedComment: string): string {
  const problem = commentProblem(trustedComment, MAX_TRUSTED_COMMENT_BYTES);
  if (problem) throw new AxError(`the trusted comment ${problem}`);
  const signature = sign(null, signedMessage(content, ALG_PREHASHED), key.privateKey);
  const global = sign(null, globalMessage(signature, trustedComment), key.privateKey);
  const line = Buffer.concat([Buffer.from(ALG_PREHASHED), key.publicKey.keyNum, signature]);
  return (
    `${UNTRUSTED_PREFIX}signature from axvisor-image, key ${key.publicKey.keyId}\n` +
    `${line.toString("base64")}\n${TRUSTED_PREFIX}${trustedComment}\n${global.toString("base64")}\n`
  );
}
