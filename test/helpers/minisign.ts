/**
 * The real minisign CLI (Debian's `minisign` 0.11, installed by .ci/run): keys and signatures
 * made by the tool publishers use, and its verdict on ours.
 */
import { spawnSync } from "node:child_process";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { runProcess, type CliRun } from "./images.js";

/**
 * libsodium's smallest scrypt limits, for keys made only to be read back quickly (minisign reads
 * the limits from the key file): minisign's own take 1 GiB and seconds at each use.
 */
export const QUICK_KDF = { opsLimit: 32_768, memLimit: 16_777_216 };

/** Why tests needing minisign skip, or undefined when it is installed. */
export const NO_MINISIGN =
  spawnSync("minisign", ["-v"]).status === 0
    ? undefined
    : "minisign is not installed (.ci/run installs it)";

/**
 * How long a process deriving a key with minisign's scrypt limits (1 GiB) may run before it is
 * killed: a safety net against a hang, not a measure (seconds alone, minutes on a loaded machine).
 */
export const SCRYPT_TIMEOUT_MS = 600_000;

/** Runs `minisign ...args`, with `input` on its standard input (its password prompts). */
export function minisign(args: string[], input?: string): Promise<CliRun> {
  return runProcess("minisign", args, { input: input ?? "", timeoutMs: SCRYPT_TIMEOUT_MS });
}

/** A key pair made by `minisign -G`: with a password (encrypted, 1 GiB scrypt) or `-W`. */
export interface MinisignKeyPair {
  secretKey: string;
  publicKeyFile: string;
  /** The base64 public key (`minisign -P` form). */
  publicKey: string;
  password?: string;
}

/** Makes a key pair named `name` in `dir` with `minisign -G`. */
export async function minisignKeyPair(
  dir: string,
  name: string,
  password?: string,
): Promise<MinisignKeyPair> {
  const secretKey = join(dir, `${name}.key`);
  const publicKeyFile = join(dir, `${name}.pub`);
  const args = ["-G", "-s", secretKey, "-p", publicKeyFile];
  const run = await minisign(
    password === undefined ? [...args, "-W"] : args,
    password === undefined ? undefined : `${password}\n${password}\n`,
  );
  if (run.code !== 0) throw new Error(`minisign -G failed: ${run.stderr}`);
  const publicKey = (await readFile(publicKeyFile, "utf8")).trim().split("\n")[1]!;
  return { secretKey, publicKeyFile, publicKey, password };
}

/** Signs `file` with `minisign -S` into `signature` (default `file.minisig`). */
export async function minisignSign(
  file: string,
  key: MinisignKeyPair,
  options: { signature?: string; trustedComment?: string; legacy?: boolean } = {},
): Promise<string> {
  const signature = options.signature ?? `${file}.minisig`;
  const args = ["-S", "-s", key.secretKey, "-m", file, "-x", signature];
  if (options.trustedComment !== undefined) args.push("-t", options.trustedComment);
  if (options.legacy) args.push("-l");
  const run = await minisign(args, key.password === undefined ? undefined : `${key.password}\n`);
  if (run.code !== 0) throw new Error(`minisign -S failed: ${run.stderr}`);
  return signature;
}

/** `minisign -V -m file -x signature -P publicKey`: its run (exit 0 when it verifies). */
export function minisignVerify(
  file: string,
  signature: string,
  publicKey: string,
): Promise<CliRun> {
  return minisign(["-V", "-m", file, "-x", signature, "-P", publicKey]);
}
