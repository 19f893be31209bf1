import { existsSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, isAbsolute, join, resolve } from "node:path";
import { AxError, UsageError } from "../errors.js";
import { FileProblemError, describeProblem, readRegularFile } from "../regular-file.js";
import type { Mirror } from "./mirrors.js";
import {
  CONFIG_FILE_NAME,
  DEFAULT_AUTO_SYNC_THRESHOLD,
  DEFAULT_FALLBACK_REGISTRY,
  DEFAULT_REGISTRY,
  defaultLocalStorage,
} from "./defaults.js";

/** The effective configuration every operation runs with. */
export interface Config {
  /** Store directory (absolute). */
  localStorage: string;
  /** Registry URL or path synced into the store. */
  registry: string;
  /** Used by `sync` when {@link Config.registry} cannot be fetched. */
  fallbackRegistry: string;
  /** Sync before reading the registry when it is missing or stale. */
  autoSync: boolean;
  /** Seconds after which the registry is stale; 0 = never re-sync a present registry. */
  autoSyncThreshold: number;
  /** URL prefix rewrites tried before the original URL. */
  mirrors: Mirror[];
  /** OCI registry hosts (`host[:port]`) that may be reached over plain HTTP. */
  insecureRegistries: string[];
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
  return validateConfigDoc(doc, path);
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
        if (typeof value !== "string" || value === "") bad(key, "a non-empty string");
        out.localStorage = resolvePath(value as string, base);
        break;
      case "registry":
      case "fallback_registry": {
        if (typeof value !== "string" || value === "") bad(key, "a non-empty string (URL or path)");
        const field = key === "registry" ? "registry" : "fallbackRegistry";
        out[field] = /^[a-z][a-z0-9+.-]*:\/\//i.test(value as string)
          ? (value as string)
          : resolvePath(value as string, base);
        break;
      }
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
      default:
        throw new AxError(`${path}: unknown key "${key}"`, {
          hint: "known keys: local_storage, registry, fallback_registry, auto_sync, auto_sync_threshold, mirrors, insecure_registries",
        });
    }
  }
  return out;
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

function envValues(env: Record<string, string | undefined>): FileValues {
  const out: FileValues = {};
  const storage = env.AXVISOR_IMAGE_LOCAL_STORAGE;
  if (storage) out.localStorage = resolve(expandHome(storage));
  const fallback = env.AXVISOR_REGISTRY_FALLBACK_URL;
  if (fallback) out.fallbackRegistry = fallback;
  return out;
}

function defaults(env: Record<string, string | undefined>): Config {
  return {
    localStorage: defaultLocalStorage(env),
    registry: DEFAULT_REGISTRY,
    fallbackRegistry: DEFAULT_FALLBACK_REGISTRY,
    autoSync: true,
    autoSyncThreshold: DEFAULT_AUTO_SYNC_THRESHOLD,
    mirrors: [],
    insecureRegistries: [],
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
  const sources = Object.fromEntries(Object.keys(config).map((k) => [k, "default"])) as Record<
    keyof Config,
    ConfigSource
  >;
  for (const key of Object.keys(config) as (keyof Config)[]) {
    for (const [source, values] of layers) {
      if (values[key] !== undefined) {
        (config as unknown as Record<string, unknown>)[key] = values[key];
        sources[key] = source;
        break;
      }
    }
  }
  if (options.overrides?.localStorage) {
    config.localStorage = resolve(cwd, expandHome(options.overrides.localStorage));
  }
  return { config, sources, file };
}
