/**
 * The registries a store is synced from: the built-in names (`axvisor`, `tgos`), URLs and paths,
 * in the order the configuration lists them (the first wins on the same name and version), each
 * with the fallback file `sync` reads when the registry itself cannot be read.
 */
import { UsageError } from "../errors.js";
import { DEFAULT_FALLBACK_REGISTRY, DEFAULT_REGISTRY } from "./defaults.js";

/** Where the built-in registries' files are published; `AXVISOR_IMAGE_REGISTRY_BASE_URL` moves it. */
export const DEFAULT_REGISTRY_BASE_URL = "https://raw.githubusercontent.com/";

/** The tgosimages registry, the newest `axbuild`'s default. */
const TGOS_REGISTRY =
  "https://raw.githubusercontent.com/rcore-os/tgosimages/refs/heads/main/registry/default.toml";

/**
 * The fallback of `tgos`: its newest versioned file known to exist (no includes, every image name
 * of 0.0.13 to 0.0.15). tgosimages has no fallback file of its own; axbuild's was `v0.0.8.toml`,
 * which its registry folder no longer holds, and the newest axbuild has none.
 */
const TGOS_FALLBACK_REGISTRY =
  "https://raw.githubusercontent.com/rcore-os/tgosimages/refs/heads/main/registry/v0.0.15.toml";

/** The built-in registries by name: their root file and fallback file, at the default base URL. */
export const BUILTIN_REGISTRIES: Readonly<Record<string, { url: string; fallback: string }>> = {
  /** axvisor-guest, `cargo axvisor image`'s registry: the default. */
  axvisor: { url: DEFAULT_REGISTRY, fallback: DEFAULT_FALLBACK_REGISTRY },
  /** tgosimages, the newest `axbuild`'s registry. */
  tgos: { url: TGOS_REGISTRY, fallback: TGOS_FALLBACK_REGISTRY },
};

/** The name of the registry used when the configuration names none. */
export const DEFAULT_REGISTRY_NAME = "axvisor";

/** True when `ref` (a `-R` value, an entry of `registries`) is a built-in registry's name. */
export function isBuiltinRegistry(ref: string): boolean {
  return Object.hasOwn(BUILTIN_REGISTRIES, ref);
}

/** A registry of the configuration, as `sync` reads it. */
export interface RegistrySource {
  /**
   * The registry as the configuration names it: a built-in name, or the URL or path as written.
   * Provenance records, `ls` and `--json` (`registry`) show it.
   */
  name: string;
  /** Where its root file is: a URL or a path. */
  url: string;
  /** The file read when the root cannot be; undefined: none (its last good copy stands in). */
  fallback?: string;
}

/** What {@link registrySources} reads from the configuration. */
export interface RegistrySettings {
  /** One registry, or several in order. */
  registry: string | readonly string[];
  /** The fallback of the first registry. */
  fallbackRegistry: string;
  /** Base URL of the built-in registries' files (default {@link DEFAULT_REGISTRY_BASE_URL}). */
  registryBaseUrl?: string;
}

/** The registries of a configuration value, in order. */
export function registryList(registry: string | readonly string[]): readonly string[] {
  return typeof registry === "string" ? [registry] : registry;
}

/** `url`, a built-in file at the default base URL, moved to `base`. */
function rebase(url: string, base: string): string {
  return base + url.slice(DEFAULT_REGISTRY_BASE_URL.length);
}

/**
 * The name of the built-in registry (`tgos`) whose root or fallback file is `url` at `base` (a
 * configuration may write the URL out, as axbuild's does), or undefined.
 */
export function builtinNameOf(url: string, base: string): string | undefined {
  const named = Object.entries(BUILTIN_REGISTRIES).find(([, builtin]) =>
    [builtin.url, builtin.fallback].some((file) => rebase(file, base) === url),
  );
  return named?.[0];
}

/**
 * The built-in fallback of the registry `ref`, at `base`: its own for a built-in name, axvisor's
 * for a URL or path (what `cargo axvisor image` and axbuild did for `-R URL`).
 */
export function builtinFallback(ref: string, base: string): string {
  const builtin = BUILTIN_REGISTRIES[isBuiltinRegistry(ref) ? ref : DEFAULT_REGISTRY_NAME]!;
  return rebase(builtin.fallback, base);
}

/**
 * The registries `sync` reads, in order. The first one's fallback is `fallbackRegistry` (which
 * `fallback_registry`, `AXVISOR_REGISTRY_FALLBACK_URL` and `TGOS_IMAGE_REGISTRY_FALLBACK_URL`
 * set); each other built-in registry has its own; another URL or path in a list has none.
 */
export function registrySources(settings: RegistrySettings): RegistrySource[] {
  const base = settings.registryBaseUrl ?? DEFAULT_REGISTRY_BASE_URL;
  return registryList(settings.registry).map((name, index) => {
    const builtin = isBuiltinRegistry(name) ? BUILTIN_REGISTRIES[name] : undefined;
    const url = builtin ? rebase(builtin.url, base) : name;
    if (index === 0) return { name, url, fallback: settings.fallbackRegistry };
    return builtin ? { name, url, fallback: rebase(builtin.fallback, base) } : { name, url };
  });
}

/** Why a list of registries cannot be used (empty, a registry listed twice), if it cannot. */
export function registryListProblem(list: readonly string[]): string | undefined {
  if (list.length === 0) return "the list of registries is empty";
  const seen = new Set<string>();
  for (const ref of list) {
    if (ref.trim() === "") return "a registry is an empty string";
    if (seen.has(ref)) return `registry ${ref} is listed twice`;
    seen.add(ref);
  }
  return undefined;
}

/**
 * A base URL for the built-in registries: http(s) or `file://`, ending with `/`.
 *
 * @throws UsageError naming `origin` when it is not such a URL.
 */
export function parseRegistryBaseUrl(text: string, origin: string): string {
  const value = text.trim();
  if (!/^(https?|file):\/\//i.test(value) || !URL.canParse(value)) {
    throw new UsageError(`${origin}: "${text}" is not an http(s):// or file:// URL`);
  }
  return value.endsWith("/") ? value : `${value}/`;
}
