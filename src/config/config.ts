import { existsSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, isAbsolute, join, resolve, sep } from "node:path";
import { AxError, UsageError } from "../errors.js";
import { FileProblemError, describeProblem, readRegularFile } from "../regular-file.js";
import { isSchemeUrl } from "../text.js";
import type { Mirror } from "./mirrors.js";
import { CONFIG_FILE_NAME, DEFAULT_AUTO_SYNC_THRESHOLD, defaultLocalStorage } from "./defaults.js";
import type { TrustRule } from "./trust.js";
import {
  DEFAULT_REGISTRY_BASE_URL,
  DEFAULT_REGISTRY_NAME,
  builtinFallback,
  isBuiltinRegistry,
  parseRegistryBaseUrl,
  registryList,
  registryListProblem,
} from "./registries.js";

/** The effective configuration every operation runs with. */
export interface Config {
  /**
   * Store directory (absolute): the registry, bookkeeping and archives, and the trees unless
   * {@link Config.extractDir} says otherwise (axbuild's `download_dir`).
   */
  localStorage: string;
  /**
   * Where extracted trees go instead of the store (absolute; axbuild's `extract_dir`). Absent:
   * in the store, as `cargo axvisor image` has them.
   */
  extractDir?: string;
  /**
   * The registry synced into the store: a built-in name (`axvisor`, `tgos`), a URL or a path;
   * or several, merged in this order (the first wins on the same name and version).
   */
  registry: string | readonly string[];
  /**
   * Used by `sync` when the first registry cannot be fetched; its default is that registry's
   * built-in fallback (axvisor's for a URL or path). Every other built-in registry of a list has
   * its own fallback.
   */
  fallbackRegistry: string;
  /**
   * Base URL the built-in registries (and their fallbacks) are read from (default
   * `https://raw.githubusercontent.com/`).
   */
  registryBaseUrl?: string;
  /** Sync before reading the registry when it is missing or stale. */
  autoSync: boolean;
  /** Seconds after which the registry is stale; 0 = never re-sync a present registry. */
  autoSyncThreshold: number;
  /** URL prefix rewrites tried before the original URL. */
  mirrors: Mirror[];
  /** OCI registry hosts (`host[:port]`) that may be reached over plain HTTP. */
  insecureRegistries: string[];
  /**
   * Publishers' keys pinned per registry (`[[trust]]`): a pinned registry must be signed. Optional
   * (none) so that a `Config` written before signatures existed stays one.
   */
  trust?: TrustRule[];
  /** Refuse a registry no pinned key signed, even one without `[[trust]]` keys (default false). */
  requireSignatures?: boolean;
  /**
   * No network at all (`--offline`, `AXVISOR_IMAGE_OFFLINE=1`): no auto-sync, `sync` fails, and
   * `pull` takes verified copies from the store or fails naming what is missing. Absent: false.
   */
  offline?: boolean;
}

/** Where a configuration value came from, for `config`. */
export type ConfigSource = "flag" | "env" | "default" | `file ${string}`;

/** The configuration and the origin of each of its values. */
export interface ResolvedConfig {
  config: Config;
  sources: Record<keyof Config, ConfigSource>;
  /** The `.image.toml` that was read, if any. */
  file: string | undefined;
}

/** Values given on the command line (or by a library caller); absent means "not given". */
export type ConfigOverrides = Partial<Config>;

/** Options of {@link resolveConfig}. */
export interface ResolveConfigOptions {
  /** Directory where the `.image.toml` search starts (default: `process.cwd()`). */
  cwd?: string;
  /** An explicit configuration file (`-c FILE`); it must exist. */
  configFile?: string;
  /** Command-line values, the highest precedence. */
  overrides?: ConfigOverrides;
  /** Environment (default: `process.env`). */
  env?: Record<string, string | undefined>;
}

/** Largest configuration file read: 1 MiB (the default one is under 1 KiB). */
export const MAX_CONFIG_FILE_BYTES = 1024 * 1024;

/**
 * Finds the nearest `.image.toml` in `start` or its parents: the first entry of that name, whatever
 * its type (reading it refuses anything but a regular file, rather than skipping to a parent's).
 */
export function findConfigFile(start: string): string | undefined {
  let dir = resolve(start);
  for (;;) {
    const candidate = join(dir, CONFIG_FILE_NAME);
    if (existsSync(candidate)) return candidate;
    const parent = dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}

function expandHome(path: string): string {
  return path === "~" || path.startsWith("~/") ? join(homedir(), path.slice(1)) : path;
}

/** A path from the config file is relative to the file's directory. */
function resolvePath(path: string, base: string): string {
  const expanded = expandHome(path);
  return isAbsolute(expanded) ? expanded : resolve(base, expanded);
}

/** Parses a threshold given as text (env var or flag): a whole number of seconds >= 0. */
export function parseThreshold(text: string, origin: string): number {
  if (!/^\d+$/.test(text.trim())) {
    throw new UsageError(
      `${origin}: auto-sync threshold must be a whole number of seconds >= 0, got "${text}"`,
    );
  }
  return Number(text.trim());
}

/** Parses an on/off environment variable: `1`/`true`/`yes` or `0`/`false`/`no`. */
function parseSwitch(text: string, origin: string): boolean {
  const value = text.trim().toLowerCase();
  if (["1", "true", "yes"].includes(value)) return true;
  if (["0", "false", "no"].includes(value)) return false;
  throw new UsageError(`${origin} must be 1 or 0, got ${JSON.stringify(text)}`);
}

type FileValues = Partial<Config>;

async function readConfigFile(path: string): Promise<FileValues> {
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(
      await readRegularFile(path, MAX_CONFIG_FILE_BYTES),
    );
  } catch (err) {
    if (err instanceof FileProblemError) {
      const { problem } = err;
      if (problem.kind === "missing") throw new UsageError(`config file ${path} does not exist`);
      if (problem.kind === "not-regular") {
        throw new UsageError(`config file ${path} is ${describeProblem(problem)}`);
      }
      throw new AxError(`config file ${path} is ${describeProblem(problem)}`);
    }
    if (err instanceof TypeError) throw new AxError(`config file ${path} is not UTF-8 text`);
    throw new AxError(`cannot read config file ${path}: ${(err as Error).message}`);
  }
  const { parse, TomlError } = await import("smol-toml");
  let doc: Record<string, unknown>;
  try {
    doc = parse(text);
  } catch (err) {
    if (err instanceof TomlError) {
      throw new AxError(`${path}:${err.line}:${err.column}: ${err.message.split("\n")[0]}`);
    }
    throw err;
  }
  const values = validateConfigDoc(doc, path);
  // Pinned keys are parsed here, so that the keys' crypto is loaded only by a file that pins some.
  if (doc.trust !== undefined) {
    const base = dirname(path);
    values.trust = (await import("./trust.js"))
      .parseTrustTables(doc.trust, path)
      .map((rule) => ({ ...rule, registry: trustPrefix(rule.registry, base) }));
  }
  return values;
}

function validateConfigDoc(doc: Record<string, unknown>, path: string): FileValues {
  const base = dirname(path);
  const out: FileValues = {};
  const bad = (key: string, what: string): never => {
    throw new AxError(`${path}: ${key} must be ${what}`);
  };
  for (const [key, value] of Object.entries(doc)) {
    switch (key) {
      case "local_storage":
      case "download_dir":
      case "extract_dir": {
        if (typeof value !== "string" || value === "") bad(key, "a non-empty string");
        const dir = resolvePath(value as string, base);
        if (key === "extract_dir") out.extractDir = dir;
        else if (out.localStorage !== undefined && out.localStorage !== dir) {
          throw new AxError(`${path}: local_storage and download_dir name different directories`, {
            hint: "they are the same setting (the store, where archives go): keep one",
          });
        } else out.localStorage = dir;
        break;
      }
      case "registry":
        if (typeof value !== "string" || value === "") {
          bad(key, "a non-empty string (axvisor, tgos, a URL or a path)");
        }
        if (doc.registries !== undefined) {
          throw new AxError(`${path}: registry and registries are both set`, {
            hint: "keep registries (several) or registry (one)",
          });
        }
        out.registry = registryRef(value as string, base);
        break;
      case "registries": {
        if (!Array.isArray(value) || value.some((v) => typeof v !== "string" || v === "")) {
          bad(key, "an array of registries (axvisor, tgos, URLs or paths)");
        }
        const list = (value as string[]).map((v) => registryRef(v, base));
        const problem = registryListProblem(list);
        if (problem !== undefined) throw new AxError(`${path}: registries: ${problem}`);
        out.registry = list;
        break;
      }
      case "fallback_registry":
        if (typeof value !== "string" || value === "") bad(key, "a non-empty string (URL or path)");
        out.fallbackRegistry = urlOrPath(value as string, base);
        break;
      case "auto_sync":
        if (typeof value !== "boolean") bad(key, "true or false");
        out.autoSync = value as boolean;
        break;
      case "auto_sync_threshold":
        if (typeof value !== "number" || !Number.isInteger(value) || value < 0) {
          bad(key, "a whole number of seconds >= 0");
        }
        out.autoSyncThreshold = value as number;
        break;
      case "mirrors":
        out.mirrors = parseMirrorTables(value, path);
        break;
      case "insecure_registries":
        if (!Array.isArray(value) || value.some((v) => typeof v !== "string")) {
          bad(key, "an array of host[:port] strings");
        }
        out.insecureRegistries = value as string[];
        break;
      case "trust": // parsed by readConfigFile
        break;
      case "require_signatures":
        if (typeof value !== "boolean") bad(key, "true or false");
        out.requireSignatures = value as boolean;
        break;
      default:
        throw new AxError(`${path}: unknown key "${key}"`, {
          hint: "known keys: local_storage (or download_dir), extract_dir, registry (or registries), fallback_registry, auto_sync, auto_sync_threshold, mirrors, insecure_registries, trust, require_signatures",
        });
    }
  }
  return out;
}

/** A URL as written; a path made absolute against `base` (the configuration file's directory). */
function urlOrPath(value: string, base: string): string {
  return isSchemeUrl(value) ? value : resolvePath(value, base);
}

/** A registry of the configuration file: a built-in name as it is, else {@link urlOrPath}. */
function registryRef(value: string, base: string): string {
  return isBuiltinRegistry(value) ? value : urlOrPath(value, base);
}

/**
 * A `[[trust]]` prefix as the registries it matches are known: a built-in name as it is, an
 * http(s) URL normalized as registry URLs are (`HTTPS://Host:443/a b/` is `https://host/a%20b/`:
 * else it would match none of them, and silently pin nothing), a path made absolute against
 * `base` as {@link registryRef} makes registry paths, keeping a trailing separator (`./regs/`
 * must not match `regs-other/`).
 */
function trustPrefix(value: string, base: string): string {
  if (/^https?:\/\//i.test(value) && URL.canParse(value)) return new URL(value).href;
  const ref = registryRef(value, base);
  return ref !== value && /[\\/]$/.test(value) && !ref.endsWith(sep) ? ref + sep : ref;
}

function parseMirrorTables(value: unknown, path: string): Mirror[] {
  if (!Array.isArray(value)) throw new AxError(`${path}: mirrors must be [[mirrors]] tables`);
  return value.map((m: unknown, i) => {
    const t = m as Record<string, unknown>;
    if (
      typeof t !== "object" ||
      t === null ||
      typeof t.prefix !== "string" ||
      typeof t.replace !== "string" ||
      t.prefix === "" ||
      Object.keys(t).some((k) => k !== "prefix" && k !== "replace")
    ) {
      throw new AxError(
        `${path}: mirrors[${i}] must have exactly a non-empty "prefix" and a "replace" string`,
      );
    }
    return { prefix: t.prefix, replace: t.replace };
  });
}

/** The value of the environment variable `name`, unless unset, empty or blank (as axbuild). */
function envValue(env: Record<string, string | undefined>, name: string): string | undefined {
  const value = env[name];
  return value === undefined || value.trim() === "" ? undefined : value;
}

/**
 * The environment's values. Ours come first where both tools have a variable for the same setting:
 * the store is `AXVISOR_IMAGE_LOCAL_STORAGE`, else `TGOS_IMAGE_LOCAL_STORAGE` (axbuild's store),
 * else `TGOS_IMAGE_DOWNLOAD_DIR` (the newest axbuild's name for it); the first registry's fallback
 * is `AXVISOR_REGISTRY_FALLBACK_URL`, else `TGOS_IMAGE_REGISTRY_FALLBACK_URL`.
 */
function envValues(env: Record<string, string | undefined>): FileValues {
  const out: FileValues = {};
  const first = (...names: string[]) =>
    names.map((name) => envValue(env, name)).find((v) => v !== undefined);
  const storage = first(
    "AXVISOR_IMAGE_LOCAL_STORAGE",
    "TGOS_IMAGE_LOCAL_STORAGE",
    "TGOS_IMAGE_DOWNLOAD_DIR",
  );
  if (storage) out.localStorage = resolve(expandHome(storage));
  const extract = first("TGOS_IMAGE_EXTRACT_DIR");
  if (extract) out.extractDir = resolve(expandHome(extract));
  const fallback = first("AXVISOR_REGISTRY_FALLBACK_URL", "TGOS_IMAGE_REGISTRY_FALLBACK_URL");
  if (fallback) out.fallbackRegistry = fallback;
  const base = first("AXVISOR_IMAGE_REGISTRY_BASE_URL");
  if (base) out.registryBaseUrl = parseRegistryBaseUrl(base, "AXVISOR_IMAGE_REGISTRY_BASE_URL");
  const offline = env.AXVISOR_IMAGE_OFFLINE;
  if (offline !== undefined && offline !== "")
    out.offline = parseSwitch(offline, "AXVISOR_IMAGE_OFFLINE");
  return out;
}

/** The defaults; `fallbackRegistry` is filled in once the registry is known. */
function defaults(env: Record<string, string | undefined>): Config {
  return {
    localStorage: defaultLocalStorage(env),
    registry: DEFAULT_REGISTRY_NAME,
    fallbackRegistry: "",
    registryBaseUrl: DEFAULT_REGISTRY_BASE_URL,
    autoSync: true,
    autoSyncThreshold: DEFAULT_AUTO_SYNC_THRESHOLD,
    mirrors: [],
    insecureRegistries: [],
    trust: [],
    requireSignatures: false,
    offline: false,
  };
}

/**
 * Computes the effective configuration: command-line flag > environment > `.image.toml` >
 * defaults, and records where each value came from.
 */
export async function resolveConfig(options: ResolveConfigOptions = {}): Promise<ResolvedConfig> {
  const cwd = options.cwd ?? process.cwd();
  const env = options.env ?? process.env;
  const file = options.configFile ? resolve(cwd, options.configFile) : findConfigFile(cwd);
  const layers: [ConfigSource, FileValues][] = [
    ["flag", options.overrides ?? {}],
    ["env", envValues(env)],
  ];
  if (file) layers.push([`file ${file}`, await readConfigFile(file)]);

  const config = defaults(env);
  const sources = Object.fromEntries(
    [...Object.keys(config), "extractDir"].map((k) => [k, "default"]),
  ) as Record<keyof Config, ConfigSource>;
  for (const key of Object.keys(sources) as (keyof Config)[]) {
    for (const [source, values] of layers) {
      if (values[key] !== undefined) {
        (config as unknown as Record<string, unknown>)[key] = values[key];
        sources[key] = source;
        break;
      }
    }
  }
  const problem = registryListProblem(registryList(config.registry));
  if (problem !== undefined) {
    throw new UsageError(
      `${sources.registry === "flag" ? "-R, --registry" : "registry"}: ${problem}`,
    );
  }
  if (sources.fallbackRegistry === "default") {
    config.fallbackRegistry = builtinFallback(
      registryList(config.registry)[0]!,
      config.registryBaseUrl ?? DEFAULT_REGISTRY_BASE_URL,
    );
  }
  if (options.overrides?.localStorage) {
    config.localStorage = resolve(cwd, expandHome(options.overrides.localStorage));
  }
  if (options.overrides?.extractDir) {
    config.extractDir = resolve(cwd, expandHome(options.overrides.extractDir));
  }
  return { config, sources, file };
}
