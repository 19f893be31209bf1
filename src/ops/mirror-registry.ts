/**
 * The registry file a mirror writes: its entries added, or updated in place where the file has
 * them already; everything else in it (other images, includes, comments) kept as written. The
 * file is replaced atomically, once per run.
 */
import { mkdir } from "node:fs/promises";
import { dirname } from "node:path";
import { writeFileAtomic } from "../atomic-file.js";
import { AxError, fsError } from "../errors.js";
import { readRegistryText, upsertImageText } from "../registry/edit.js";
import { parseRegistry } from "../registry/format.js";
import type { ImageEntry } from "../registry/types.js";

/**
 * Checks, before any image moves, that the registry file `file` can be edited: missing, or a
 * registry file as {@link writeMirrorRegistry} needs it. TOML that lists no image and no include
 * but has other keys is another tool's file (a `Cargo.toml`): the entries are not added to it.
 *
 * @throws AxError naming the file when it is not a regular file, cannot be read or is no registry.
 */
export async function checkMirrorRegistry(file: string): Promise<void> {
  const unknown: string[] = [];
  const onWarning = (message: string) => {
    const key = /unknown key "(.*)" ignored$/.exec(message)?.[1];
    if (key !== undefined) unknown.push(key);
  };
  const registry = parseRegistry(await readRegistryText(file), file, { onWarning });
  if (registry.images.length === 0 && registry.includes.length === 0 && unknown.length > 0) {
    throw new AxError(
      `${file} is not a registry file: it lists no images and has other keys (${unknown.join(", ")})`,
      { hint: "give --registry-file a new file, or a registry file to add the entries to" },
    );
  }
}

/** Adds or updates `entries` in the registry file `file` (created when missing); returns it. */
export async function writeMirrorRegistry(
  file: string,
  entries: readonly ImageEntry[],
): Promise<string> {
  let text = await readRegistryText(file);
  const before = text;
  for (const entry of entries) text = upsertImageText(text, entry, file).text;
  if (text === before && before !== "") return file;
  try {
    await mkdir(dirname(file), { recursive: true });
    await writeFileAtomic(file, text);
  } catch (err) {
    throw fsError(err, "write", file);
  }
  return file;
}
