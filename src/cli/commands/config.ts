import { existsSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Command } from "commander";
import { CONFIG_FILE_NAME } from "../../config/defaults.js";
import { renderDefaultConfig } from "../../config/render.js";
import { UsageError } from "../../errors.js";
import { commandContext } from "../context.js";
import { result } from "../output.js";

/** `config`: each effective value, as TOML, with its origin in a comment. */
export async function configCommand(_options: unknown, command: Command): Promise<void> {
  const { resolved } = await commandContext(command);
  const { config, sources } = resolved;
  const { stringify } = await import("smol-toml");
  const line = (key: string, value: unknown, source: string) =>
    `${stringify({ [key]: value }).trim()}  # ${source}`;
  const registries = typeof config.registry === "string" ? undefined : config.registry;
  const out = [
    line("local_storage", config.localStorage, sources.localStorage),
    config.extractDir === undefined
      ? `# extract_dir: the store  # ${sources.extractDir}`
      : line("extract_dir", config.extractDir, sources.extractDir),
    registries === undefined
      ? line("registry", config.registry, sources.registry)
      : line("registries", registries, sources.registry),
    line("fallback_registry", config.fallbackRegistry, sources.fallbackRegistry),
    line("auto_sync", config.autoSync, sources.autoSync),
    line("auto_sync_threshold", config.autoSyncThreshold, sources.autoSyncThreshold),
    line("insecure_registries", config.insecureRegistries, sources.insecureRegistries),
    line("require_signatures", config.requireSignatures, sources.requireSignatures),
    line("offline", config.offline ?? false, sources.offline),
  ];
  if (config.registryBaseUrl !== undefined) {
    out.push(
      `# built-in registries read from ${config.registryBaseUrl}  # ${sources.registryBaseUrl}`,
    );
  }
  out.push(`# mirrors: ${sources.mirrors}`);
  // One line each: the output escapes a line break inside a line.
  const table = (value: object) => out.push(...stringify(value).trim().split("\n"));
  for (const m of config.mirrors) table({ mirrors: [m] });
  out.push(`# trust: ${sources.trust}`);
  for (const t of config.trust ?? []) {
    const keys = t.keys.map((k) => k.text);
    table({ trust: [{ registry: t.registry, keys }] });
  }
  result(...out);
}

/** `defconfig [-f]`: writes the default `.image.toml` in the working directory. */
export async function defconfigCommand(options: { force?: boolean }): Promise<void> {
  const path = join(process.cwd(), CONFIG_FILE_NAME);
  if (existsSync(path) && !options.force) {
    throw new UsageError(`${path} already exists`, { hint: "use --force to overwrite it" });
  }
  await writeFile(path, renderDefaultConfig());
  result(path);
}
