// `prepare`, which npm runs on an install in a checkout and before a pack: builds dist/ with tsc
// when the dev dependencies are there. A production install (`npm ci --omit=dev`) has no
// TypeScript: it keeps the dist/ an earlier build made, or says how to make one, and succeeds.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
let tsc;
try {
  tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc");
} catch {
  if (!existsSync(new URL("../dist/cli/main.js", import.meta.url))) {
    process.stderr.write(
      "axvisor-image: no TypeScript (dev dependencies omitted), so dist/ is not built: " +
        "run `npm ci && npm run build` once, or install the packed tarball (`npm pack`)\n",
    );
  }
  process.exit(0);
}
const build = spawnSync(process.execPath, [tsc, "-p", "tsconfig.build.json"], {
  cwd: root,
  stdio: "inherit",
});
process.exit(build.status ?? 1);
