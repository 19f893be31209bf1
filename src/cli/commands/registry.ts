import type { Command } from "commander";
import { AxError, UsageError } from "../../errors.js";
import { addImage } from "../../ops/publish.js";
import { generateSigningKey, signRegistryFile } from "../../ops/sign.js";
import { requireNetwork } from "../../ops/offline.js";
import { checkRegistry } from "../../registry/check.js";
import { isRemote, toLocation } from "../../registry/location.js";
import { commandContext } from "../context.js";
import { count } from "../../text.js";
import { result } from "../output.js";
import { openSigningKey, readPassword } from "../password.js";

/** Options of `registry add`, as commander parses them. */
interface AddOptions {
  file: string;
  name: string;
  imageVersion: string;
  arch?: string;
  description?: string;
  url?: string;
  releasedAt?: string;
  /** Re-sign the registry file with this secret key. */
  key?: string;
}

/**
 * `registry add ARCHIVE --file FILE --name N --image-version V [--arch] [--description] [--url]
 * [--released-at]`.
 */
export async function registryAddCommand(
  archive: string,
  options: AddOptions,
  command: Command,
): Promise<void> {
  const ctx = await commandContext(command);
  const { file, imageVersion, key, ...fields } = options;
  const signingKey = key === undefined ? undefined : await openSigningKey(key);
  await addImage({
    ...fields,
    archive,
    registryFile: file,
    version: imageVersion,
    signingKey,
    logger: ctx.logger,
  });
}

/** `registry check FILE|URL [--online]`: every problem on stdout, exit 1 when there is one. */
export async function registryCheckCommand(
  location: string,
  options: { online?: boolean },
  command: Command,
): Promise<void> {
  const ctx = await commandContext(command);
  if (options.online || isRemote(toLocation(location))) {
    requireNetwork(ctx.config, `checking ${location}`);
  }
  const report = await checkRegistry(location, {
    online: options.online,
    signal: ctx.signal,
    logger: ctx.logger,
  });
  for (const problem of report.problems) result(problem);
  const summary = `${count(report.images, "image")} in ${count(report.files.length, "file")}`;
  if (report.problems.length > 0) {
    throw new AxError(
      `registry ${location}: ${count(report.problems.length, "problem")} (${summary})`,
    );
  }
  result(`registry ${location}: no problems (${summary})`);
}

/** `registry sign FILE... --key KEY`: writes `FILE.minisig` beside each file, prints its path. */
export async function registrySignCommand(
  files: string[],
  options: { key: string },
  command: Command,
): Promise<void> {
  const ctx = await commandContext(command);
  const key = await openSigningKey(options.key);
  const now = Math.floor(Date.now() / 1000);
  for (const file of files) {
    const signed = await signRegistryFile(file, key, { now, logger: ctx.logger });
    result(signed.signature);
  }
}

/** Options of `registry keygen`, as commander parses them. */
interface KeygenCommandOptions {
  key: string;
  publicKey?: string;
  unencrypted?: boolean;
  force?: boolean;
}

/**
 * `registry keygen --key KEY [--public-key PUB] [--unencrypted] [--force]`: makes a minisign key
 * pair (the password asked twice unless `--unencrypted`); prints the public key to pin.
 */
export async function registryKeygenCommand(
  options: KeygenCommandOptions,
  command: Command,
): Promise<void> {
  const ctx = await commandContext(command);
  let password: string | undefined;
  if (!options.unencrypted) {
    const what = `new key ${options.key}`;
    password = await readPassword(`Password for the new key ${options.key}: `, what);
    if (password === "") {
      throw new UsageError(`${what}: empty password`, { hint: "give one, or use --unencrypted" });
    }
    if ((await readPassword("The same password again: ", what)) !== password) {
      throw new AxError("the two passwords differ: no key was made");
    }
  }
  const made = await generateSigningKey({
    secretKey: options.key,
    publicKey: options.publicKey,
    password,
    force: options.force,
  });
  ctx.logger.info(
    `made key ${made.key.keyId}: secret key ${made.secretKey} (keep it secret), ` +
      `public key ${made.publicKey}`,
  );
  result(made.key.text);
}
