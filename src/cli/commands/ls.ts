import type { Command } from "commander";
import { listImages } from "../../ops/ls.js";
import { openRegistry } from "../../ops/open-registry.js";
import { commandContext } from "../context.js";
import { formatTable } from "../human-readable.js";
import { result } from "../output.js";

/** `ls [-v] [--json] [--local] [PATTERN]`. */
export async function lsCommand(
  pattern: string | undefined,
  options: { verbose?: boolean; json?: boolean; local?: boolean; names?: boolean },
  command: Command,
): Promise<void> {
  if (options.local) {
    await (await import("./du.js")).duCommand({ json: options.json }, command);
    return;
  }
  if (options.names) {
    await (await import("./completion.js")).printImageNames(pattern, command);
    return;
  }
  const ctx = await commandContext(command);
  const images = await openRegistry(ctx.config, ctx);
  const rows = listImages(images, { pattern, verbose: options.verbose });
  const { readProvenance } = await import("../../store/provenance.js");
  const provenance = await readProvenance(ctx.config.localStorage);
  if (options.json) {
    const { registryImageJson, printJson } = await import("../json.js");
    const [{ localState, scanStore }, { storeDirs }, { readVerifiedKeys }] = await Promise.all([
      import("../../store/scan.js"),
      import("../../store/layout.js"),
      import("../../store/signatures.js"),
    ]);
    const dirs = storeDirs(ctx.config.localStorage, ctx.config.extractDir);
    const inventory = await scanStore(dirs, images, { sizes: true });
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
  const several = (provenance?.registries.length ?? 0) > 1;
  const cells = rows.map((r) => [
    r.name,
    !options.verbose && r.versions > 1 ? `${r.version} (${r.versions} versions)` : r.version,
    r.arch,
    ...(several ? [provenance?.of(r.entry)?.registry ?? "?"] : []),
    r.description,
  ]);
  const header = ["Name", "Version", "Architecture", ...(several ? ["Registry"] : [])];
  result(...formatTable([...header, "Description"], cells));
}
