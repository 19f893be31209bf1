import type { Command } from "commander";
import { registryList } from "../../config/registries.js";
import { listImages, type ListRow } from "../../ops/ls.js";
import { openRegistry } from "../../ops/open-registry.js";
import { storeDirs } from "../../store/layout.js";
import { localState, scanStore, type Inventory } from "../../store/scan.js";
import { commandContext } from "../context.js";
import { formatTable } from "../human-readable.js";
import { result } from "../output.js";

/** `ls [-v] [--json] [--local] [PATTERN]`. */
export async function lsCommand(
  pattern: string | undefined,
  options: {
    verbose?: boolean;
    json?: boolean;
    local?: boolean;
    names?: boolean;
    versions?: boolean;
    stored?: boolean;
  },
  command: Command,
): Promise<void> {
  if (options.local) {
    await (await import("./du.js")).duCommand({ json: options.json }, command);
    return;
  }
  if (options.names) {
    await (await import("./completion.js")).printImageNames(pattern, options, command);
    return;
  }
  const ctx = await commandContext(command);
  const images = await openRegistry(ctx.config, ctx);
  const rows = listImages(images, { pattern, verbose: options.verbose });
  // Which registry each entry came from: for `--json`, and for a column when several are
  // configured (a 20,000-entry provenance record is not read for nothing).
  const several = registryList(ctx.config.registry).length > 1;
  const { readProvenance } = await import("../../store/provenance.js");
  const provenance =
    options.json || several ? await readProvenance(ctx.config.localStorage) : undefined;
  const dirs = storeDirs(ctx.config.localStorage, ctx.config.extractDir);
  const inventory = await scanStore(dirs, images, { sizes: options.json });
  if (options.json) {
    const { registryImageJson, printJson } = await import("../json.js");
    const { readVerifiedKeys } = await import("../../store/signatures.js");
    const verified = await readVerifiedKeys(ctx.config.localStorage);
    printJson(
      rows.map((r) =>
        registryImageJson(
          r.entry,
          localState(inventory, r.entry),
          provenance?.of(r.entry),
          verified,
        ),
      ),
    );
    return;
  }
  if (rows.length === 0) {
    ctx.logger.info(pattern ? `no image matches "${pattern}"` : "the registry lists no images");
    return;
  }
  // Merged from several registries: which one each row comes from, before the description.
  const cells = rows.map((r) => [
    r.name,
    !options.verbose && r.versions > 1 ? `${r.version} (${r.versions} versions)` : r.version,
    r.arch,
    pulledCell(inventory, r, !options.verbose),
    ...(several ? [provenance?.of(r.entry)?.registry ?? "?"] : []),
    r.description,
  ]);
  const header = ["Name", "Version", "Architecture", "Pulled", ...(several ? ["Registry"] : [])];
  result(...formatTable([...header, "Description"], cells));
}

/**
 * The Pulled column of `row`: `yes` (its tree is in the store), `archive` (its archive only,
 * pulled with `--no-extract`), or `-`; with `otherVersions` (one row per name), the versions of
 * the name that are in the store when the row's is not.
 */
function pulledCell(inventory: Inventory, row: ListRow, otherVersions: boolean): string {
  const local = localState(inventory, row.entry);
  if (local.tree !== undefined) return "yes";
  if (local.archive !== undefined) return "archive";
  if (!otherVersions) return "-";
  const versions = inventory.copies
    .filter((c) => c.entry?.name === row.name)
    .map((c) => c.entry!.version);
  return versions.length === 0 ? "-" : [...new Set(versions)].join(", ");
}
