/**
 * Registry credentials as `docker login` stores them: the `auths` map of
 * `$DOCKER_CONFIG/config.json` (default `~/.docker/config.json`). Credential helpers
 * (`credsStore`, `credHelpers`) are not run.
 */
import { readFile } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";
import { AxError, hasCode } from "../../errors.js";

/** A user name and password (or token) for one registry. */
export interface Credentials {
  username: string;
  password: string;
  /** The file they came from, for messages. */
  source: string;
}

/** The Docker configuration file: `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`. */
export function dockerConfigPath(env: Record<string, string | undefined> = process.env): string {
  const dir = env.DOCKER_CONFIG;
  return join(dir !== undefined && dir !== "" ? dir : join(homedir(), ".docker"), "config.json");
}

/** `https://ghcr.io/v1/` and `ghcr.io` both stand for `ghcr.io`. */
function authsKeyHost(key: string): string {
  return key
    .replace(/^[a-z]+:\/\//i, "")
    .split("/")[0]!
    .toLowerCase();
}

function decodeEntry(entry: unknown): { username: string; password: string } | undefined {
  if (typeof entry !== "object" || entry === null) return undefined;
  const { auth, username, password } = entry as Record<string, unknown>;
  if (typeof auth === "string" && auth !== "") {
    const text = Buffer.from(auth, "base64").toString("utf8");
    const colon = text.indexOf(":");
    if (colon > 0) return { username: text.slice(0, colon), password: text.slice(colon + 1) };
  }
  if (typeof username === "string" && typeof password === "string" && username !== "") {
    return { username, password };
  }
  return undefined;
}

/**
 * The credentials `docker login HOST` stored for `host` (`host[:port]`), or undefined when there
 * are none (no file, no entry, or an entry without a user name and password). A file that is not
 * JSON is an {@link AxError} naming it.
 */
export async function dockerCredentials(
  host: string,
  env: Record<string, string | undefined> = process.env,
): Promise<Credentials | undefined> {
  const source = dockerConfigPath(env);
  let text: string;
  try {
    text = await readFile(source, "utf8");
  } catch (err) {
    if (hasCode(err, "ENOENT") || hasCode(err, "ENOTDIR")) return undefined;
    throw new AxError(`cannot read ${source}: ${(err as Error).message}`, { cause: err });
  }
  let config: { auths?: Record<string, unknown> };
  try {
    config = JSON.parse(text) as typeof config;
  } catch (err) {
    throw new AxError(`${source} is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
  const wanted = host.toLowerCase();
  for (const [key, entry] of Object.entries(config.auths ?? {})) {
    if (authsKeyHost(key) !== wanted) continue;
    const found = decodeEntry(entry);
    if (found !== undefined) return { ...found, source };
  }
  return undefined;
}
