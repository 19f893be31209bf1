/**
 * Trust: the publishers' keys a user pins per registry, as `[[trust]]` tables of `.image.toml`
 * give them, and which of them apply to a registry being synced.
 *
 * ```toml
 * require_signatures = true            # or --require-signatures: refuse any unsigned registry
 *
 * [[trust]]
 * registry = "https://example.org/axvisor-registry/"   # a prefix of the registry's URL or path
 * keys = ["RWQ...", "RWS..."]          # minisign public keys; several at once for a rotation
 * ```
 */
import { createHash } from "node:crypto";
import { AxError } from "../errors.js";
import { parsePublicKey, type PublicKey } from "../minisign.js";

/** One `[[trust]]` table: the keys pinned for the registries whose location `registry` covers. */
export interface TrustRule {
  /** A prefix of the registry's URL or path (the root registry's, as configured). */
  registry: string;
  /** The pinned keys, any of which may sign every file of such a registry. */
  keys: PublicKey[];
}

/**
 * Parses the `trust` value of the config file `path` (an array of `[[trust]]` tables with exactly
 * a non-empty `registry` string and a non-empty `keys` array of minisign public keys).
 *
 * @throws AxError naming the file, the table and the key at fault.
 */
export function parseTrustTables(value: unknown, path: string): TrustRule[] {
  if (!Array.isArray(value)) throw new AxError(`${path}: trust must be [[trust]] tables`);
  return value.map((table: unknown, i) => {
    const t = table as Record<string, unknown>;
    if (
      typeof t !== "object" ||
      t === null ||
      typeof t.registry !== "string" ||
      t.registry === "" ||
      !Array.isArray(t.keys) ||
      t.keys.length === 0 ||
      Object.keys(t).some((k) => k !== "registry" && k !== "keys")
    ) {
      throw new AxError(
        `${path}: trust[${i}] must have exactly a non-empty "registry" string and a non-empty "keys" array`,
        { hint: 'keys are minisign public keys: keys = ["RWQ..."]' },
      );
    }
    const keys = t.keys.map((key: unknown, j) => {
      const what = `${path}: trust[${i}].keys[${j}]`;
      if (typeof key !== "string") throw new AxError(`${what} must be a string ("RWQ...")`);
      return parsePublicKey(key, what);
    });
    return { registry: t.registry, keys };
  });
}

/**
 * True when the `[[trust]]` prefix `prefix` covers `location`: it is the whole location, or it
 * ends where a path segment does (the prefix ends with `/`, or the location goes on with `/`,
 * `?` or `#`). A host, a folder or a name is never matched by its beginning: `https://example.org`
 * does not cover `https://example.org.evil.com/...`, nor `/srv/regs` `/srv/regs-other/...`, nor
 * `tg` `tgos`, whose publishers the keys are not.
 */
export function prefixCovers(prefix: string, location: string): boolean {
  if (!location.startsWith(prefix)) return false;
  if (location.length === prefix.length || /[/\\]$/.test(prefix)) return true;
  return /^[/\\?#]/.test(location.slice(prefix.length));
}

/**
 * The keys pinned for the registry known by `locations` (its URL or path, and its built-in name
 * such as `tgos`): those of every rule whose `registry` covers one of them
 * ({@link prefixCovers}), each key once.
 */
export function pinnedKeys(rules: readonly TrustRule[], ...locations: string[]): PublicKey[] {
  const keys = new Map<string, PublicKey>();
  for (const rule of rules) {
    if (!locations.some((location) => prefixCovers(rule.registry, location))) continue;
    for (const key of rule.keys) keys.set(key.text, key);
  }
  return [...keys.values()];
}

/**
 * What the trust settings require, as one string: empty when they require nothing (no
 * `[[trust]]`, signatures not required), else a digest of the rules and their keys. A registry
 * synced under other settings is not known to meet these.
 */
export function trustFingerprint(rules: readonly TrustRule[], requireSignatures: boolean): string {
  if (rules.length === 0 && !requireSignatures) return "";
  const settings = rules.map((rule) => [rule.registry, rule.keys.map((k) => k.text).sort()]);
  return createHash("sha256")
    .update(JSON.stringify({ requireSignatures, rules: settings }))
    .digest("hex");
}
