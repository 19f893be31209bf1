// `prepare`, which npm runs on an install in a checkout and before a pack: builds dist/.
// - With the dev dependencies (`npm ci`): tsc, which also writes the declarations.
// - In a production install (`npm ci --omit=dev`, no TypeScript): Node's own type stripper
//   (`module.stripTypeScriptTypes`, Node >= 22.13), which the sources allow (tsconfig's
//   `erasableSyntaxOnly`): each src/**/*.ts becomes the same dist/**/*.js, types blanked out.
//   Node 20 (past its end of life) has none: it keeps the dist/ an earlier build made, or says
//   how to make one. Either way the install succeeds.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, readFile, readdir, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import * as nodeModule from "node:module";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));

/** tsc's path when TypeScript is installed, else undefined. */
function findTsc() {
  try {
    return createRequire(import.meta.url).resolve("typescript/bin/tsc");
  } catch {
    return undefined;
  }
}

/** Writes dist/ from src/ with Node's type stripper. */
async function stripTypes(strip) {
  const src = join(root, "src");
  const entries = await readdir(src, { recursive: true, withFileTypes: true });
  for (const entry of entries) {
    if (!entry.isFile() || !entry.name.endsWith(".ts") || entry.name.endsWith(".d.ts")) continue;
    const from = join(entry.parentPath, entry.name);
    const to = join(root, "dist", relative(src, from)).replace(/\.ts$/, ".js");
    await mkdir(dirname(to), { recursive: true });
    await writeFile(to, strip(await readFile(from, "utf8")));
  }
}

const tsc = findTsc();
if (tsc !== undefined) {
  const build = spawnSync(process.execPath, [tsc, "-p", "tsconfig.build.json"], {
    cwd: root,
    stdio: "inherit",
  });
  process.exit(build.status ?? 1);
}
const strip = nodeModule.stripTypeScriptTypes;
if (typeof strip === "function") {
  await stripTypes((code) => strip(code, { mode: "strip" }));
} else if (!existsSync(join(root, "dist", "cli", "main.js"))) {
  process.stderr.write(
    `axvisor-image: dist/ is not built: Node ${process.version} has no type stripper (Node >= 22.13 ` +
      "has) and TypeScript is a dev dependency: run `npm ci && npm run build` once, " +
      "or install the packed tarball (`npm pack`)\n",
  );
}
