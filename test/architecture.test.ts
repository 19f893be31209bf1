/**
 * The layers of docs/ARCHITECTURE.md hold: every import in `src/` goes down the picture (or to a
 * shared module), so that `transfer/` never reaches `store/` or `config/`, `config/` never
 * reaches `transfer/`, and nothing climbs back up; OCI code is loaded only where an `oci://` URL
 * needs it.
 */
import assert from "node:assert/strict";
import { readFile, readdir } from "node:fs/promises";
import { dirname, join, relative, resolve } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";

const SRC = fileURLToPath(new URL("../src/", import.meta.url));

/**
 * What each layer may import, as the picture of docs/ARCHITECTURE.md draws it: the layers below
 * it, down to the shared modules. `config/` is a leaf beside the stack (it imports no layer, and
 * only `ops/`, `cli/` and the library read it).
 */
const MAY_IMPORT: Record<string, readonly string[]> = {
  index: ["cli", "ops", "config", "store", "registry", "transfer", "archive", "shared"],
  cli: ["ops", "config", "store", "registry", "transfer", "archive", "shared"],
  ops: ["config", "store", "registry", "transfer", "archive", "shared"],
  config: ["shared"],
  store: ["registry", "archive", "shared"],
  registry: ["transfer", "archive", "shared"],
  transfer: ["archive", "shared"],
  archive: ["shared"],
  shared: [],
};

/** One relative import of a module. */
interface Import {
  /** Importing module, relative to `src/`. */
  from: string;
  /** Imported module, relative to `src/` (`.ts`). */
  to: string;
  /** `import type` / `export type`: nothing is loaded. */
  typeOnly: boolean;
  /** `import(...)`: loaded when the code runs, not with the module. */
  dynamic: boolean;
}

async function modules(dir = SRC): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) found.push(...(await modules(path)));
    else if (entry.name.endsWith(".ts") && !entry.name.endsWith(".d.ts")) found.push(path);
  }
  return found;
}

const STATIC = /^\s*(import|export)\s+(type\s+)?[^;]*?from\s+"(\.{1,2}\/[^"]+)"/gms;
const DYNAMIC = /import\(\s*"(\.{1,2}\/[^"]+)"\s*\)/g;

async function imports(): Promise<Import[]> {
  const found: Import[] = [];
  for (const path of await modules()) {
    const text = await readFile(path, "utf8");
    const from = relative(SRC, path);
    const target = (spec: string) =>
      relative(SRC, resolve(dirname(path), spec)).replace(/\.js$/, ".ts");
    for (const m of text.matchAll(STATIC)) {
      found.push({ from, to: target(m[3]!), typeOnly: m[2] !== undefined, dynamic: false });
    }
    for (const m of text.matchAll(DYNAMIC)) {
      found.push({ from, to: target(m[1]!), typeOnly: false, dynamic: true });
    }
  }
  return found;
}

/** The layer of a module path relative to `src/`. */
function layer(module: string): string {
  if (module === "index.ts") return "index";
  return module.includes("/") ? module.split("/")[0]! : "shared";
}

describe("architecture", () => {
  it("every import goes down the layers: none climbs back up or reaches sideways", async () => {
    const all = await imports();
    assert.ok(all.length > 200, `the scan finds the imports (${all.length})`);
    for (const module of new Set(all.flatMap((i) => [i.from, i.to]))) {
      assert.ok(layer(module) in MAY_IMPORT, `${module} belongs to a known layer`);
    }
    const upward = all
      .filter((i) => layer(i.from) !== layer(i.to))
      .filter((i) => !MAY_IMPORT[layer(i.from)]!.includes(layer(i.to)))
      .map((i) => `${i.from} -> ${i.to}`);
    assert.deepEqual(upward, []);
  });

  it("OCI code is loaded only where an oci:// URL needs it", async () => {
    const loadsOci = (await imports())
      .filter((i) => i.to.startsWith("transfer/oci/") && !i.from.startsWith("transfer/oci/"))
      .filter((i) => !i.typeOnly && !i.dynamic && i.to !== "transfer/oci/reference.ts")
      .map((i) => `${i.from} -> ${i.to}`);
    assert.deepEqual(loadsOci, []);
  });
});
