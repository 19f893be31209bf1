/**
 * `ci-key`: a CI cache key made from the exact images a job pulls (the lock file's entries, or
 * the requested images' sha256s), and the path worth caching (the store), in the forms GitHub
 * Actions' `actions/cache` and GitLab CI's `cache:` take.
 */
import { createHash } from "node:crypto";
import { isAbsolute, relative, sep } from "node:path";
import { UsageError } from "../errors.js";
import { formatSpec } from "../registry/resolve.js";
import type { ImageEntry } from "../registry/types.js";
import { printable } from "../text.js";
import type { CiKeyFormat } from "./options.js";

/** Prefix of every key: a store layout change would bump its version. */
const KEY_PREFIX = "axvisor-image-v1-";

/** A cache key and what to cache under it. */
export interface CiKey {
  /** `axvisor-image-v1-` and 32 hex digits of a sha256 over the images. */
  key: string;
  /** The directory to cache: the store, absolute. */
  path: string;
  /** The images the key stands for, sorted. */
  images: { image: string; sha256: string }[];
}

/**
 * The cache key of `images` with the store at `store`: the same images (name, version, sha256,
 * in any order, each however many times) give the same key, and any change gives another.
 */
export function ciKey(images: readonly ImageEntry[], store: string): CiKey {
  // Each image once: `ci-key linux linux` is `ci-key linux`.
  const unique = new Map(images.map((e) => [`${formatSpec(e)} ${e.sha256}`, e]));
  const listed = [...unique.values()]
    .map((e) => ({ image: formatSpec(e), sha256: e.sha256 }))
    .sort((a, b) => (a.image < b.image ? -1 : a.image > b.image ? 1 : 0));
  const hash = createHash("sha256");
  for (const { image, sha256 } of listed) hash.update(`${image} ${sha256}\n`);
  return { key: KEY_PREFIX + hash.digest("hex").slice(0, 32), path: store, images: listed };
}

/**
 * The lines of `key` in `format`: `github`, `key=` and `path=` lines for `$GITHUB_OUTPUT`;
 * `gitlab`, `AXVISOR_IMAGE_CACHE_KEY=` and `AXVISOR_IMAGE_CACHE_PATH=` lines for a dotenv report,
 * the path relative to `cwd` (GitLab caches only paths inside the project).
 *
 * @throws UsageError when the path holds a control character (a line break would add an output,
 *   and the printed path, escaped, would name another directory), or for `gitlab` lies outside
 *   `cwd`.
 */
export function renderCiKey(
  key: CiKey,
  format: Exclude<CiKeyFormat, "json">,
  cwd = process.cwd(),
): string[] {
  if (printable(key.path) !== key.path) {
    throw new UsageError(
      `the store's path ${printable(key.path)} holds a control character: it cannot be printed as it is`,
      { hint: "use a store path without control characters (-S DIR)" },
    );
  }
  switch (format) {
    case "github":
      return [`key=${key.key}`, `path=${key.path}`];
    case "gitlab":
      return [
        `AXVISOR_IMAGE_CACHE_KEY=${key.key}`,
        `AXVISOR_IMAGE_CACHE_PATH=${insideProject(key.path, cwd)}`,
      ];
  }
}

/** `path` relative to `cwd`, which it must lie in. */
function insideProject(path: string, cwd: string): string {
  const rel = relative(cwd, path);
  if (rel === "" || rel === ".." || rel.startsWith(`..${sep}`) || isAbsolute(rel)) {
    throw new UsageError(`the store ${path} is not inside the project directory ${cwd}`, {
      hint: "GitLab caches only paths inside the project: use e.g. -S .axvisor-images (or local_storage in .image.toml)",
    });
  }
  return rel;
}
