/**
 * minisign secret key files, read and written as minisign 0.11 does, so that a publisher's
 * existing key (`minisign -G`, encrypted or not) signs with this tool and a key made here signs
 * with `minisign -S`.
 *
 * The file is an untrusted comment line, then `base64(sig_alg "Ed" || kdf_alg || chk_alg "B2" ||
 * salt (32) || opslimit (8, LE) || memlimit (8, LE) || keynum_sk)` where `keynum_sk` is `key id
 * (8) || Ed25519 secret key (seed 32 || public key 32) || checksum (32)`, the checksum being the
 * BLAKE2b-256 of `sig_alg || key id || secret key` (zero in minisign's unencrypted keys). With
 * `kdf_alg` `Sc`, `keynum_sk` is XORed with 104 bytes of scrypt (libsodium's
 * `crypto_pwhash_scryptsalsa208sha256`) of the password and salt; with two zero bytes it is stored
 * as it is (`minisign -G -W`).
 */
import { generateKeyPairSync, randomBytes, scrypt } from "node:crypto";
import { blake2b } from "@noble/hashes/blake2.js";
import { AxError } from "./errors.js";
import {
  ed25519PrivateKey,
  makePublicKey,
  rawPublicKey,
  strictBase64,
  textLines,
  type SigningKey,
} from "./minisign.js";

const SIG_ALG = "Ed";
const KDF_SCRYPT = "Sc";
const KDF_NONE = "\0\0";
const CHK_ALG = "B2";
const SALT_BYTES = 32;
const KEY_ID_BYTES = 8;
const SEED_BYTES = 32;
const SECRET_KEY_BYTES = 64;
const CHECKSUM_BYTES = 32;
/** key id || secret key || checksum: the part the password encrypts. */
const SEALED_BYTES = KEY_ID_BYTES + SECRET_KEY_BYTES + CHECKSUM_BYTES;
const HEADER_BYTES = 2 + 2 + 2 + SALT_BYTES + 8 + 8;
const FILE_BYTES = HEADER_BYTES + SEALED_BYTES;

/** The largest secret key file read: a key line and an untrusted comment of minisign's limit. */
export const MAX_SECRET_KEY_FILE_BYTES = 4096;

/** scrypt's cost in libsodium's terms, as the key file records it. */
export interface KdfLimits {
  /** `crypto_pwhash_scryptsalsa208sha256` opslimit. */
  opsLimit: number;
  /** `crypto_pwhash_scryptsalsa208sha256` memlimit, in bytes. */
  memLimit: number;
}

/** minisign's limits (libsodium's `..._SENSITIVE`): scrypt with N = 2^20, r = 8, 1 GiB. */
export const MINISIGN_KDF_LIMITS: KdfLimits = { opsLimit: 33_554_432, memLimit: 1_073_741_824 };

/** libsodium's smallest limits: below these it refuses to derive. */
const MIN_KDF_LIMITS: KdfLimits = { opsLimit: 32_768, memLimit: 16_777_216 };

/** The most scrypt memory spent on a key file (what minisign's own limits need, 1 GiB). */
const MAX_SCRYPT_MEMORY = 1 << 30;
/** The most scrypt passes (p) accepted from a key file: minisign's keys have 1. */
const MAX_SCRYPT_PARALLELISM = 8;

/** A parsed secret key file, its key still sealed when encrypted. */
export interface SecretKeyFile {
  /** True when a password is needed to open it. */
  encrypted: boolean;
  salt: Buffer;
  limits: KdfLimits;
  /** key id || secret key || checksum, XORed with the scrypt stream when encrypted. */
  sealed: Buffer;
}

/** scrypt's N, r and p for libsodium's `opslimit` and `memlimit` (its `pickparams`). */
function scryptParams(limits: KdfLimits): { N: number; r: number; p: number } {
  const ops = Math.max(limits.opsLimit, MIN_KDF_LIMITS.opsLimit);
  const r = 8;
  const log2Below = (max: number) => {
    let log2 = 1;
    while (log2 < 63 && 2 ** log2 <= max / 2) log2++;
    return log2;
  };
  if (ops < limits.memLimit / 32) {
    return { N: 2 ** log2Below(Math.floor(ops / (r * 4))), r, p: 1 };
  }
  const log2 = log2Below(Math.floor(limits.memLimit / (r * 128)));
  const maxrp = Math.min(Math.floor(ops / 4 / 2 ** log2), 0x3fffffff);
  return { N: 2 ** log2, r, p: Math.floor(maxrp / r) };
}

/** The 104-byte scrypt stream that seals a key for `password`. */
async function keyStream(
  password: string,
  salt: Buffer,
  limits: KdfLimits,
  what: string,
): Promise<Buffer> {
  const { N, r, p } = scryptParams(limits);
  const memory = 128 * N * r;
  if (memory > MAX_SCRYPT_MEMORY || p < 1 || p > MAX_SCRYPT_PARALLELISM) {
    throw new AxError(
      `${what}: key derivation parameters out of range (scrypt N=${N} r=${r} p=${p})`,
    );
  }
  return new Promise((resolve, reject) => {
    scrypt(password, salt, SEALED_BYTES, { N, r, p, maxmem: memory + (1 << 24) }, (err, key) => {
      if (err)
        reject(new AxError(`${what}: key derivation failed: ${err.message}`, { cause: err }));
      else resolve(key);
    });
  });
}

function xor(data: Buffer, stream: Buffer): Buffer {
  return Buffer.from(data.map((byte, i) => byte ^ stream[i]!));
}

/**
 * The checksum of a secret key: BLAKE2b-256 of `sig_alg || key id || secret key`. Node's crypto
 * has BLAKE2b-512 only, and BLAKE2b-256 is another function (the length is in its parameter block,
 * not a truncation): this one is @noble/hashes's (audited, no dependencies).
 */
function checksum(keyNum: Buffer, secretKey: Buffer): Buffer {
  const data = Buffer.concat([Buffer.from(SIG_ALG), keyNum, secretKey]);
  return Buffer.from(blake2b(data, { dkLen: CHECKSUM_BYTES }));
}

/**
 * Parses a secret key file (`minisign.key`); `what` names it in errors. Nothing is decrypted yet:
 * see {@link openSecretKey}.
 *
 * @throws AxError naming `what` when it is not a minisign secret key (a public key or signature
 *   file given by mistake is named as such).
 */
export function parseSecretKeyFile(bytes: Uint8Array, what: string): SecretKeyFile {
  const fail = (problem: string) => new AxError(`${what}: ${problem}`);
  if (bytes.length > MAX_SECRET_KEY_FILE_BYTES) throw fail("not a minisign secret key (too large)");
  const lines = textLines(bytes, what);
  if (lines instanceof AxError) throw lines;
  const encoded = lines[1]?.trim() ?? "";
  const data = strictBase64(encoded);
  if (lines.length !== 2 || data === undefined || data.length !== FILE_BYTES) {
    const publicKey = data?.length === 2 + KEY_ID_BYTES + 32;
    throw fail(`not a minisign secret key${publicKey ? " (it is a public key)" : ""}`);
  }
  const field = (start: number, length: number) => data.subarray(start, start + length);
  if (field(0, 2).toString("latin1") !== SIG_ALG) {
    throw fail('unsupported signature algorithm (minisign keys are Ed25519, "Ed")');
  }
  if (field(4, 2).toString("latin1") !== CHK_ALG) throw fail("unsupported checksum algorithm");
  const kdf = field(2, 2).toString("latin1");
  if (kdf !== KDF_SCRYPT && kdf !== KDF_NONE) throw fail("unsupported key derivation function");
  const limit = (start: number) => Number(data.readBigUInt64LE(start));
  return {
    encrypted: kdf === KDF_SCRYPT,
    salt: Buffer.from(field(6, SALT_BYTES)),
    limits: { opsLimit: limit(6 + SALT_BYTES), memLimit: limit(6 + SALT_BYTES + 8) },
    sealed: Buffer.from(field(HEADER_BYTES, SEALED_BYTES)),
  };
}

/**
 * The signing key of a parsed secret key file, decrypted with `password` when it is encrypted.
 *
 * @throws AxError naming `what` for a wrong password (the checksum does not match), a missing
 *   password, parameters that would take more than 1 GiB, or a key whose halves disagree.
 */
export async function openSecretKey(
  file: SecretKeyFile,
  password: string | undefined,
  what: string,
): Promise<SigningKey> {
  let plain = file.sealed;
  if (file.encrypted) {
    if (password === undefined)
      throw new AxError(`${what}: the key is encrypted: a password is needed`);
    plain = xor(file.sealed, await keyStream(password, file.salt, file.limits, what));
  }
  const keyNum = plain.subarray(0, KEY_ID_BYTES);
  const secretKey = plain.subarray(KEY_ID_BYTES, KEY_ID_BYTES + SECRET_KEY_BYTES);
  // minisign checks the checksum of encrypted keys only: `minisign -G -W` leaves it zero.
  const sum = plain.subarray(KEY_ID_BYTES + SECRET_KEY_BYTES);
  if (file.encrypted && !checksum(keyNum, secretKey).equals(sum)) {
    throw new AxError(`${what}: wrong password for this key`);
  }
  const privateKey = ed25519PrivateKey(Buffer.from(secretKey.subarray(0, SEED_BYTES)));
  const raw = rawPublicKey(privateKey);
  if (!raw.equals(secretKey.subarray(SEED_BYTES))) {
    throw new AxError(`${what}: corrupt key (its public half does not match its seed)`);
  }
  return { publicKey: makePublicKey(Buffer.from(keyNum), raw), privateKey };
}

/** A new key pair and its secret key file. */
export interface GeneratedKey {
  key: SigningKey;
  /** The secret key file's text, as `minisign -G` writes it. */
  secretKeyFile: string;
}

/**
 * Makes a new key pair with a random key id, and its secret key file: encrypted with `password`
 * (scrypt with `limits`, minisign's by default), or stored unencrypted without one, as
 * `minisign -G -W` does.
 */
export async function generateSecretKey(
  password: string | undefined,
  limits: KdfLimits = MINISIGN_KDF_LIMITS,
): Promise<GeneratedKey> {
  const { privateKey } = generateKeyPairSync("ed25519");
  const jwk = privateKey.export({ format: "jwk" });
  const seed = Buffer.from(jwk.d!, "base64url");
  const raw = Buffer.from(jwk.x!, "base64url");
  const keyNum = randomBytes(KEY_ID_BYTES);
  const secretKey = Buffer.concat([seed, raw]);
  const plain = Buffer.concat([keyNum, secretKey, checksum(keyNum, secretKey)]);
  const encrypted = password !== undefined;
  const salt = encrypted ? randomBytes(SALT_BYTES) : Buffer.alloc(SALT_BYTES);
  const used = encrypted ? limits : { opsLimit: 0, memLimit: 0 };
  const numbers = Buffer.alloc(16);
  numbers.writeBigUInt64LE(BigInt(used.opsLimit), 0);
  numbers.writeBigUInt64LE(BigInt(used.memLimit), 8);
  const sealed = encrypted ? xor(plain, await keyStream(password, salt, limits, "new key")) : plain;
  const data = Buffer.concat([
    Buffer.from(SIG_ALG),
    Buffer.from(encrypted ? KDF_SCRYPT : KDF_NONE, "latin1"),
    Buffer.from(CHK_ALG),
    salt,
    numbers,
    sealed,
  ]);
  const comment = encrypted ? "minisign encrypted secret key" : "minisign unencrypted secret key";
  return {
    key: { publicKey: makePublicKey(keyNum, raw), privateKey },
    secretKeyFile: `untrusted comment: ${comment}\n${data.toString("base64")}\n`,
  };
}
