/**
 * `registry sign` and `registry keygen`: signing registry files for publishers, with minisign keys
 * (`../minisign.ts`), so that a key made here signs with `minisign -S` and a key made by
 * `minisign -G` signs here. A signature is written beside its file, `FILE.minisig`, where the sync
 * looks for it, with a trusted comment giving the time of signing and the file's name.
 */
import { lstat, rm, writeFile } from "node:fs/promises";
import { basename, resolve } from "node:path";
import { writeFileAtomic } from "../atomic-file.js";
import { AxError, UsageError, fsError, hasCode } from "../errors.js";
import { silentLogger, type Logger } from "../log.js";
import {
  MAX_SECRET_KEY_FILE_BYTES,
  generateSecretKey,
  openSecretKey,
  parseSecretKeyFile,
  type KdfLimits,
} from "../minisign-key.js";
import {
  SIGNATURE_SUFFIX,
  formatPublicKeyFile,
  signContent,
  type PublicKey,
  type SigningKey,
} from "../minisign.js";
import { FileProblemError, readRegularFile } from "../regular-file.js";
import { parseRegistry } from "../registry/format.js";
import { trustedCommentFor } from "../registry/signature.js";
import {
  MAX_REGISTRY_FILE_BYTES,
  decodeRegistryText,
  readLocalRegistryFile,
} from "../registry/source.js";

/** Options of {@link loadSigningKey}. */
export interface LoadSigningKeyOptions {
  /** Asked for the password of an encrypted key (not called for an unencrypted one). */
  password?: () => Promise<string>;
}

/**
 * Opens the minisign secret key file at `path` (`minisign -G` makes one, and so does
 * {@link generateSigningKey}), decrypting it with the password when it is encrypted.
 *
 * @throws UsageError when the file is missing or not a regular file; AxError naming it when it is
 *   not a minisign secret key, the password is wrong or missing.
 */
export async function loadSigningKey(
  path: string,
  options: LoadSigningKeyOptions = {},
): Promise<SigningKey> {
  let bytes: Buffer;
  try {
    bytes = await readRegularFile(path, MAX_SECRET_KEY_FILE_BYTES);
  } catch (err) {
    if (err instanceof FileProblemError) {
      const tooLarge = err.problem.kind === "too-large";
      if (tooLarge) throw new AxError(`secret key ${path}: not a minisign secret key (too large)`);
      throw new UsageError(`secret key ${err.message}`);
    }
    throw fsError(err, "read", path);
  }
  const what = `secret key ${path}`;
  const file = parseSecretKeyFile(bytes, what);
  if (file.encrypted && options.password === undefined) {
    throw new AxError(`${what}: the key is encrypted: a password is needed`);
  }
  const password = file.encrypted ? await options.password!() : undefined;
  return openSecretKey(file, password, what);
}

/** What {@link signRegistryFile} wrote. */
export interface SignResult {
  /** The registry file signed. */
  file: string;
  /** Its signature file, `FILE.minisig`. */
  signature: string;
  /** The key id of the key that signed (as minisign prints it: up to 16 hex digits). */
  keyId: string;
  /** The trusted timestamp, unix seconds. */
  timestamp: number;
}

/** Options of {@link signRegistryFile}. */
export interface SignOptions {
  /** The trusted timestamp, unix seconds (default: now). */
  now?: number;
  /** Told what was signed. */
  logger?: Logger;
}

/**
 * Signs the registry file `file` with `key`: checks that it is a registry the sync would read
 * (its includes are not followed: sign each of them too), then writes `FILE.minisig` atomically,
 * with the trusted comment `timestamp:<now>\tfile:<name>\thashed`.
 *
 * @throws RegistryError naming the file when it is missing, too large or not a valid registry;
 *   AxError when the signature cannot be written.
 */
export async function signRegistryFile(
  file: string,
  key: SigningKey,
  options: SignOptions = {},
): Promise<SignResult> {
  const content = await readLocalRegistryFile(file, MAX_REGISTRY_FILE_BYTES);
  parseRegistry(decodeRegistryText(content, file), file);
  const timestamp = options.now ?? Math.floor(Date.now() / 1000);
  const text = signContent(content, key, trustedCommentFor(basename(file), timestamp));
  const signature = file + SIGNATURE_SUFFIX;
  try {
    await writeFileAtomic(signature, text);
  } catch (err) {
    throw fsError(err, "write", signature);
  }
  const { keyId } = key.publicKey;
  (options.logger ?? silentLogger).info(`signed ${file} with key ${keyId}: ${signature}`);
  return { file, signature, keyId, timestamp };
}

/** Options of {@link generateSigningKey}. */
export interface KeygenOptions {
  /** Where the secret key goes (refused when it exists, unless `force`). */
  secretKey: string;
  /** Where the public key goes; default: `secretKey` with `.key` replaced by `.pub` (or added). */
  publicKey?: string;
  /** Encrypts the secret key (scrypt, as minisign does); none: stored unencrypted (`-W`). */
  password?: string;
  /** scrypt's cost (default minisign's: 1 GiB of memory, a few seconds). */
  kdfLimits?: KdfLimits;
  /** Replace existing key files. */
  force?: boolean;
}

/** What {@link generateSigningKey} made. */
export interface KeygenResult {
  secretKey: string;
  publicKey: string;
  /** The public key, to pin (its `text` is what `[[trust]] keys` takes). */
  key: PublicKey;
}

/** The default public key file of the secret key file `secretKey`. */
export function publicKeyPathFor(secretKey: string): string {
  return secretKey.endsWith(".key")
    ? `${secretKey.slice(0, -".key".length)}.pub`
    : `${secretKey}.pub`;
}

function keyExists(path: string): UsageError {
  return new UsageError(`${path} exists already`, {
    hint: "keep your key (sign with it), or replace it with --force",
  });
}

/** Writes a new file `path` (mode `mode`), never replacing one unless `force`. */
async function writeNewFile(
  path: string,
  text: string,
  mode: number,
  force: boolean,
): Promise<void> {
  try {
    if (force) await rm(path, { force: true });
    await writeFile(path, text, { mode, flag: "wx" });
  } catch (err) {
    if (hasCode(err, "EEXIST")) throw keyExists(path);
    throw fsError(err, "write", path);
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch (err) {
    if (hasCode(err, "ENOENT")) return false;
    throw fsError(err, "read", path);
  }
}

/**
 * Makes a minisign key pair: the secret key (mode 0600) and the public key files, as `minisign -G`
 * writes them. Neither file is replaced unless `force`.
 *
 * @throws UsageError when a file exists, or both paths are one; AxError when one cannot be written.
 */
export async function generateSigningKey(options: KeygenOptions): Promise<KeygenResult> {
  const secretKey = options.secretKey;
  const publicKey = options.publicKey ?? publicKeyPathFor(secretKey);
  // One file in two spellings (`a.key`, `./a.key`): the public key would replace the secret one.
  if (resolve(publicKey) === resolve(secretKey)) {
    throw new UsageError(`the public and the secret key cannot both be ${secretKey}`);
  }
  const force = options.force ?? false;
  // Checked before the key is derived (seconds), and again when each file is created.
  for (const path of [secretKey, publicKey]) {
    if (!force && (await exists(path))) throw keyExists(path);
  }
  const generated = await generateSecretKey(options.password, options.kdfLimits);
  await writeNewFile(secretKey, generated.secretKeyFile, 0o600, force);
  await writeNewFile(publicKey, formatPublicKeyFile(generated.key.publicKey), 0o644, force);
  return { secretKey, publicKey, key: generated.key.publicKey };
}
