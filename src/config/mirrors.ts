/**
 * Mirrors, as `[[mirrors]]` in `.image.toml` and `--mirror PREFIX=REPLACEMENT` give them: URL
 * prefix rewriting, so that an archive is fetched from a nearer copy first. The candidates for
 * every URL (mirrors first, the original last) are computed here, whatever the URL's scheme.
 */
import { UsageError } from "../errors.js";

/** A mirror: URLs starting with `prefix` are also tried with that prefix replaced by `replace`. */
export interface Mirror {
  /** The start of the original URLs this mirror serves, e.g. `https://github.com/`. */
  prefix: string;
  /** What replaces `prefix`, e.g. `https://mirror.example.org/github/`. */
  replace: string;
}

/**
 * The URLs to try for `url`, in order: the rewrite of every mirror whose prefix matches (in the
 * order given), then the original URL itself. Duplicates are tried once.
 */
export function candidateUrls(url: string, mirrors: readonly Mirror[]): string[] {
  const rewrites = mirrors
    .filter((mirror) => url.startsWith(mirror.prefix))
    .map((mirror) => mirror.replace + url.slice(mirror.prefix.length));
  return [...new Set([...rewrites, url])];
}

/**
 * Parses a `PREFIX=REPLACEMENT` mirror argument (split at the first `=`); throws a
 * {@link UsageError} naming the argument when a side is missing.
 */
export function parseMirrorFlag(text: string): Mirror {
  const at = text.indexOf("=");
  const prefix = at < 0 ? "" : text.slice(0, at);
  const replace = at < 0 ? "" : text.slice(at + 1);
  if (prefix === "" || replace === "") {
    throw new UsageError(`malformed mirror "${text}": expected PREFIX=REPLACEMENT`, {
      hint: "e.g. https://github.com/=https://mirror.example.org/github/",
    });
  }
  return { prefix, replace };
}
