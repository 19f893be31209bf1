/**
 * Where a registry file is: an http(s) URL, or a local file given as a `file://` URL or a plain
 * path. A location is kept as one canonical string (the normalized URL, or the absolute path), so
 * that the same file reached in two spellings is read once.
 */

import { dirname, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { isLoopbackHost } from "../transfer/hosts.js";
import { RegistryError } from "./errors.js";
import { quote, urlScheme } from "./rules.js";

/** True for an http(s) location, false for a local file. */
export function isRemote(location: string): boolean {
  return location.startsWith("http://") || location.startsWith("https://");
}

/**
 * `location` without the credentials of its URL (`https://user:token@host/x` is
 * `https://host/x`): what may be written to a file that is shared or committed. Other locations
 * (paths, other schemes) are returned as they are.
 */
export function withoutCredentials(location: string): string {
  if (!isRemote(location) || !URL.canParse(location)) return location;
  const url = new URL(location);
  if (url.username === "" && url.password === "") return location;
  url.username = "";
  url.password = "";
  return url.href;
}

/**
 * The canonical location of a registry given by the user: http(s) URLs normalized, `file://` URLs
 * and paths (relative ones against the working directory) made absolute paths.
 *
 * @throws RegistryError naming the URL for another scheme or a malformed URL.
 */
export function toLocation(input: string): string {
  const scheme = urlScheme(input);
  if (scheme === undefined) return resolve(input);
  if (scheme === "http:" || scheme === "https:" || scheme === "file:") {
    try {
      const url = new URL(input);
      return scheme === "file:" ? fileURLToPath(url) : url.href;
    } catch (err) {
      throw new RegistryError(`invalid registry URL ${quote(input)}`, { cause: err });
    }
  }
  throw new RegistryError(
    `unsupported registry URL scheme "${scheme}" in ${input} (use http://, https://, file:// or a path)`,
  );
}

/** True for an `http://` URL whose host is not this machine (`localhost`, 127.x.x.x, [::1]). */
function isPlainHttpElsewhere(location: string): boolean {
  return location.startsWith("http://") && !isLoopbackHost(new URL(location).host);
}

/**
 * The location of `[[includes]] url = ref` in the registry at `parent`: absolute URLs as they are,
 * relative ones resolved against the parent's URL, or its directory for a local file.
 *
 * @throws RegistryError naming both when the include is malformed, when a remote registry
 *   includes a local file (refused: a server must not make us read local files), or when an https
 *   registry includes a plain http file on another machine (refused, as redirects down to http).
 */
export function resolveInclude(parent: string, ref: string): string {
  if (urlScheme(ref) !== undefined) {
    const location = toLocation(ref);
    if (isRemote(parent) && !isRemote(location)) {
      throw new RegistryError(
        `${parent}: include ${quote(ref)} refused: a remote registry cannot include local files`,
      );
    }
    if (parent.startsWith("https://") && isPlainHttpElsewhere(location)) {
      throw new RegistryError(
        `${parent}: include ${quote(ref)} refused: an https registry cannot include plain http files ` +
          `(only loopback hosts may be)`,
      );
    }
    return location;
  }
  if (!isRemote(parent)) return resolve(dirname(parent), ref);
  try {
    return new URL(ref, parent).href;
  } catch (err) {
    throw new RegistryError(`${parent}: include ${quote(ref)} is not a valid URL`, { cause: err });
  }
}

/**
 * The absolute URL of an image whose `url` is `ref` in the registry at `parent`: absolute URLs as
 * they are; relative ones resolved against the parent's URL, or as a `file://` URL against its
 * directory for a local file (a mirror's registry file names its archives beside it this way).
 *
 * @throws RegistryError naming both when the result is not a valid URL.
 */
export function resolveImageUrl(parent: string, ref: string): string {
  if (urlScheme(ref) !== undefined) return ref;
  try {
    return new URL(ref, isRemote(parent) ? parent : pathToFileURL(parent)).href;
  } catch (err) {
    throw new RegistryError(`${parent}: image url ${quote(ref)} is not a valid URL`, {
      cause: err,
    });
  }
}
