import type { Command } from "commander";
import { imageInfo, type VersionInfo } from "../../ops/info.js";
import { parseSpec } from "../../registry/resolve.js";
import { readVerifiedKeys, verifiedImageKey } from "../../store/signatures.js";
import { commandContext } from "../context.js";
import { formatBytes } from "../human-readable.js";
import { result } from "../output.js";

/** `info NAME[:VERSION] [--json]`. */
export async function infoCommand(
  image: string,
  options: { json?: boolean },
  command: Command,
): Promise<void> {
  const spec = parseSpec(image);
  const ctx = await commandContext(command);
  const versions = await imageInfo(ctx.config, spec, ctx);
  const verified = await readVerifiedKeys(ctx.config.localStorage);
  if (options.json) {
    const { registryImageJson, printJson } = await import("../json.js");
    printJson(versions.map((v) => registryImageJson(v.entry, v.local, v.provenance, verified)));
    return;
  }
  result(spec.name, ...versions.flatMap((v) => describe(v, verified)));
}

/** The lines of one version: its registry fields, its signature, then where it is in the store. */
function describe(
  { entry, latest, local, provenance }: VersionInfo,
  verified: ReadonlyMap<string, string>,
): string[] {
  const keyId = verified.get(verifiedImageKey(entry.name, entry.version));
  const row = (label: string, value: string) => `  ${label.padEnd(12)} ${value}`;
  const lines = [
    "",
    `version ${entry.version}${latest ? " (latest)" : ""}`,
    row("released", entry.released_at ?? "-"),
    row("arch", entry.arch),
    row("description", entry.description),
    row("url", entry.url),
    row("sha256", entry.sha256),
    row("signed", keyId === undefined ? "not verified" : `verified, key ${keyId}`),
  ];
  if (provenance) {
    const via = { registry: "", fallback: ", its fallback", "last-good": ", its last good copy" }[
      provenance.via
    ];
    lines.push(row("registry", `${provenance.registry} (${provenance.file}${via})`));
  }
  if (local.archive === undefined && local.tree === undefined) {
    lines.push(row("local", "not in the store"));
  } else {
    lines.push(row("archive", local.archive ?? "-"), row("tree", local.tree ?? "-"));
    lines.push(row("disk usage", formatBytes(local.bytes)));
  }
  return lines;
}
