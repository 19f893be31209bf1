import { existsSync, lstatSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { isAbsolute, join } from "node:path";

/** The registry the Rust tool reads by default. */
export const DEFAULT_REGISTRY =
  "https://raw.githubusercontent.com/arceos-hypervisor/axvisor-guest/refs/heads/main/registry/default.toml";

/** Used by `sync` when the registry itself cannot be fetched. */
export const DEFAULT_FALLBACK_REGISTRY =
  "https://raw.githubusercontent.com/arceos-hypervisor/axvisor-guest/refs/heads/main/registry/v0.0.25.toml";

/** Seven days, as the Rust tool. */
export const DEFAULT_AUTO_SYNC_THRESHOLD = 7 * 24 * 60 * 60;

/** Name of the configuration file searched upward from the working directory. */
export const CONFIG_FILE_NAME = ".image.toml";

/** `<os tmpdir>/.axvisor-images`: the Rust tool's store, shared by every user of the machine. */
export function rustLocalStorage(): string {
  return join(tmpdir(), ".axvisor-images");
}

/**
 * The store of this user, in their cache directory as gh and pip keep theirs (no other user can
 * create it first, the system may clean it): `$XDG_CACHE_HOME/axvisor-image`, else
 * `~/.cache/axvisor-image` (`%LOCALAPPDATA%\axvisor-image` on Windows).
 */
export function userLocalStorage(env: Record<string, string | undefined> = process.env): string {
  if (process.platform === "win32" && env.LOCALAPPDATA) {
    return join(env.LOCALAPPDATA, "axvisor-image");
  }
  const cache = env.XDG_CACHE_HOME;
  return join(cache && isAbsolute(cache) ? cache : join(homedir(), ".cache"), "axvisor-image");
}

/** True when `path` is a directory (not a link to one) that this user owns. */
function ownDirectory(path: string): boolean {
  try {
    const st = lstatSync(path);
    return st.isDirectory() && (process.getuid === undefined || st.uid === process.getuid());
  } catch {
    return false;
  }
}

/**
 * The default store: this user's ({@link userLocalStorage}); but while that does not exist and
 * the Rust tool's ({@link rustLocalStorage}) is a directory this user owns, that one, so that a
 * store already in use there keeps working.
 */
export function defaultLocalStorage(env: Record<string, string | undefined> = process.env): string {
  const user = userLocalStorage(env);
  if (existsSync(user)) return user;
  const rust = rustLocalStorage();
  return ownDirectory(rust) ? rust : user;
}
