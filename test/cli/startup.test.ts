/**
 * What the CLI loads: nothing of HTTP (Node's http/https/tls, our transfer layer, proxy agents)
 * for `--help`, `ls`, `path` and a warm pull, and no proxy agent for a download without a proxy
 * (nor OCI support for one from an https URL).
 * Each module the CLI resolves is traced by a module hook (`register`, through NODE_OPTIONS).
 */
import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { after, before, describe, it } from "node:test";
import { startWorld, type World } from "../helpers/world.js";

const HTTP_MODULES = /^(node:(https?|tls|net)|.*\/transfer\/(http|agents|download)\.js|.*proxy)/;
/** OCI support: loaded only when an oci:// URL appears. */
const OCI_MODULES = /\/transfer\/oci\//;

describe("start-up: what each command loads", () => {
  let w: World;
  let env: Record<string, string>;
  before(async () => {
    w = await startWorld();
    await w.publish("guest", "1.0", [{ name: "kernel", data: "k" }]);
    const hooks = join(w.root, "trace-hooks.mjs");
    await writeFile(
      hooks,
      `import { writeSync } from "node:fs";
       export async function resolve(specifier, context, next) {
         const resolved = await next(specifier, context);
         writeSync(2, "LOADED " + resolved.url + "\\n");
         return resolved;
       }`,
    );
    const register = join(w.root, "trace.mjs");
    await writeFile(
      register,
      `import { register } from "node:module";\nregister(${JSON.stringify(pathToFileURL(hooks).href)});\n`,
    );
    env = { NODE_OPTIONS: `--import=${pathToFileURL(register).href}` };
  });
  after(() => w.close());

  const loaded = (stderr: string) =>
    stderr
      .split("\n")
      .filter((line) => line.startsWith("LOADED "))
      .map((line) => line.slice("LOADED ".length));

  it("a download loads Node's http, but no proxy agent when no proxy applies", async () => {
    const run = await w.cli(["pull", "guest"], { env });
    assert.equal(run.code, 0, run.stderr);
    const modules = loaded(run.stderr);
    assert.ok(modules.includes("node:http"), "the trace sees HTTP being loaded");
    assert.deepEqual(
      modules.filter((m) => /proxy-agent/.test(m)),
      [],
    );
    assert.deepEqual(
      modules.filter((m) => OCI_MODULES.test(m)),
      [],
    );
  });

  for (const args of [["--help"], ["ls"], ["path", "guest"], ["pull", "guest"]]) {
    it(`${args.join(" ")} loads nothing of HTTP`, async () => {
      const run = await w.cli(args, { env });
      assert.equal(run.code, 0, run.stderr);
      const modules = loaded(run.stderr);
      assert.ok(modules.length > 0, "the trace works");
      assert.deepEqual(
        modules.filter((m) => HTTP_MODULES.test(m)),
        [],
      );
    });
  }
});
