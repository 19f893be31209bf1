/**
 * Registry logins as Docker keeps them, in `$DOCKER_CONFIG/config.json` (default
 * `~/.docker/config.json`): the credential helper the file names for the host
 * (`credHelpers[HOST]`, else `credsStore`) is asked, as docker, oras and crane do; without one,
 * the `auths` entry `docker login` wrote is used. The hint for a registry that wants a login says
 * where the login came from, or should come from.
 */
import { homedir } from "node:os";
import { join } from "node:path";
import { AxError, hasCode } from "../../errors.js";
import { FileProblemError, readRegularFile } from "../../regular-file.js";
import { TransferError } from "../http.js";
import {
  CredentialHelperError,
  helperProgram,
  runCredentialHelper,
  type HelperOptions,
} from "./credential-helper.js";
import { DOCKER_HUB, DOCKER_HUB_NAMES } from "./reference.js";

/** A login for one registry: a user name and password, or an identity token. */
export type Credentials = (
  | { kind: "password"; username: string; password: string }
  /** An OAuth2 refresh token (`identitytoken`, or a helper's `<token>` user): only a token
   *  service can take it. */
  | { kind: "identity-token"; token: string }
) & {
  /** Where it came from, for messages: the config file, or the helper program. */
  source: string;
};

/** Where the login for one host comes from. */
export interface LoginSource {
  /** The Docker configuration file read (it may not exist). */
  file: string;
  /** The credential helper the file names for the host, and the setting that names it. */
  helper?: { program: string; setting: string };
  /** Without a helper: the `auths` entry for the host, if it holds a login. */
  stored?: Credentials;
}

/** The Docker configuration file: `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`. */
export function dockerConfigPath(env: Record<string, string | undefined> = process.env): string {
  const dir = env.DOCKER_CONFIG;
  return join(dir !== undefined && dir !== "" ? dir : join(homedir(), ".docker"), "config.json");
}

/** `https://ghcr.io/v1/` and `ghcr.io` both stand for `ghcr.io`. */
/** Largest Docker configuration file read (logins and settings: a few KiB). */
const MAX_DOCKER_CONFIG_BYTES = 4 * 1024 * 1024;

/** The key docker login stores Docker Hub's login under, and asks credential helpers for. */
const DOCKER_HUB_LOGIN_KEY = "https://index.docker.io/v1/";

/** The server a login for `host` is known by: Docker Hub's key for Docker Hub, else the host. */
function loginServer(host: string): string {
  return host === DOCKER_HUB ? DOCKER_HUB_LOGIN_KEY : host;
}

function authsKeyHost(key: string): string {
  return key
    .replace(/^[a-z]+:\/\//i, "")
    .split("/")[0]!
    .toLowerCase();
}

function decodeEntry(entry: unknown, source: string): Credentials | undefined {
  if (typeof entry !== "object" || entry === null) return undefined;
  const { auth, username, password, identitytoken } = entry as Record<string, unknown>;
  if (typeof identitytoken === "string" && identitytoken !== "") {
    return { kind: "identity-token", token: identitytoken, source };
  }
  if (typeof auth === "string" && auth !== "") {
    const text = Buffer.from(auth, "base64").toString("utf8");
    const colon = text.indexOf(":");
    if (colon > 0) {
      const [user, pass] = [text.slice(0, colon), text.slice(colon + 1)];
      return { kind: "password", username: user, password: pass, source };
    }
  }
  if (typeof username === "string" && typeof password === "string" && username !== "") {
    return { kind: "password", username, password, source };
  }
  return undefined;
}

/** `value` when it is an object, else an empty one. */
function record(value: unknown): Record<string, unknown> {
  return typeof value === "object" && value !== null ? (value as Record<string, unknown>) : {};
}

/**
 * Where the login for `host` (`host[:port]`) comes from, read from the Docker configuration file
 * (none there: a source without a login). Nothing is run yet.
 *
 * @throws AxError naming the file when it cannot be read or is not JSON, or when it names a
 *   helper that is not a helper's name (a path, say).
 */
export async function loginSource(
  host: string,
  env: Record<string, string | undefined> = process.env,
): Promise<LoginSource> {
  const file = dockerConfigPath(env);
  let text: string;
  try {
    // A FIFO or a device in its place is an error naming it, never a hang.
    text = (await readRegularFile(file, MAX_DOCKER_CONFIG_BYTES)).toString("utf8");
  } catch (err) {
    if (err instanceof FileProblemError && err.problem.kind === "missing") return { file };
    if (hasCode(err, "ENOTDIR")) return { file };
    if (err instanceof FileProblemError) throw err;
    throw new AxError(`cannot read ${file}: ${(err as Error).message}`, { cause: err });
  }
  let config: Record<string, unknown>;
  try {
    config = record(JSON.parse(text));
  } catch (err) {
    throw new AxError(`${file} is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
  const wanted = host.toLowerCase();
  // Docker Hub's login may be under any of its names (docker login writes index.docker.io).
  const names = wanted === DOCKER_HUB ? DOCKER_HUB_NAMES : [wanted];
  const isWanted = (key: string) => names.includes(authsKeyHost(key));
  const perHost = Object.entries(record(config.credHelpers)).find(([key]) => isWanted(key));
  const [setting, name] =
    perHost === undefined
      ? ["credsStore", config.credsStore]
      : [`credHelpers["${perHost[0]}"]`, perHost[1]];
  if (typeof name === "string" && name !== "") {
    const program = helperProgram(name);
    if (program === undefined) {
      throw new AxError(`${file}: ${setting} "${name}" is not the name of a credential helper`, {
        hint: "a helper is named as docker names it: `pass` runs docker-credential-pass from PATH",
      });
    }
    return { file, helper: { program, setting } };
  }
  for (const [key, entry] of Object.entries(record(config.auths))) {
    if (!isWanted(key)) continue;
    const stored = decodeEntry(entry, file);
    if (stored !== undefined) return { file, stored };
  }
  return { file };
}

/**
 * The login `source` gives for `host`: the helper's answer (none when it has no login for the
 * host), else the stored one, else undefined (anonymous).
 *
 * @throws TransferError naming the helper when it cannot run, fails or times out (a mirror's
 *   registry then gives way to the next candidate); AbortedError on abort.
 */
export async function loginCredentials(
  source: LoginSource,
  host: string,
  options: HelperOptions,
): Promise<Credentials | undefined> {
  const { helper } = source;
  if (helper === undefined) return source.stored;
  try {
    const answer = await runCredentialHelper(helper.program, loginServer(host), options);
    return answer.kind === "not-found" ? undefined : { ...answer, source: helper.program };
  } catch (err) {
    if (!(err instanceof CredentialHelperError)) throw err;
    const check = `check it with \`echo ${host} | ${helper.program} get\``;
    throw new TransferError(
      host,
      `credential helper ${helper.program} (${helper.setting} in ${source.file}) ${err.message}`,
      {
        retryable: false,
        hint: `${err.missing ? "install it" : check}, or remove ${helper.setting} from ${source.file}`,
      },
    );
  }
}

/**
 * What to do about a registry at `host` that wants a login, or refused `refused`: add one to the
 * helper, or renew the helper's (never `docker login` for a helper's user); else `docker login`.
 */
export function loginHint(
  source: LoginSource,
  host: string,
  refused: Credentials | undefined,
): string {
  const { helper, file } = source;
  if (helper === undefined) {
    return `log in with \`docker login ${host}\` (logins are read from ${file})`;
  }
  const where = `${helper.setting} in ${file}`;
  return refused === undefined
    ? `${helper.program} (${where}) has no login for ${host}: add one to it`
    : `the login ${helper.program} (${where}) gives for ${host} was refused: renew it there`;
}
