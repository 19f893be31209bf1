/**
 * `completion bash|zsh|fish`: the scripts parse in their shells, and completing image names runs
 * the CLI (`ls --names`) instead of carrying a list. bash and fish completions are exercised for
 * real, with an `axvisor-image` on PATH that runs this checkout's CLI.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { chmod, mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { defaultToolDirs, findTool } from "../../src/ops/resize.js";
import { CLI, cliEnv } from "../helpers/images.js";
import { startWorld, type World } from "../helpers/world.js";

const run = promisify(execFile);
const shells = Object.fromEntries(
  await Promise.all(
    ["bash", "zsh", "fish"].map(async (s) => [s, await findTool(s, defaultToolDirs())] as const),
  ),
) as Record<"bash" | "zsh" | "fish", string | undefined>;
const missing = (shell: keyof typeof shells) =>
  shells[shell] === undefined ? `${shell} is not installed` : false;

describe("completion", () => {
  let w: World;
  let bin: string;
  const scripts: Record<string, string> = {};
  const env = () => cliEnv({ PATH: `${bin}:${process.env.PATH ?? ""}` });

  before(async () => {
    w = await startWorld();
    await w.publish("qemu_aarch64_linux", "0.0.26", [{ name: "kernel", data: "k" }]);
    await w.publish("qemu_riscv64_linux", "0.0.26", [{ name: "kernel", data: "k" }]);
    await w.publish("phytiumpi-freertos", "0.0.26", [{ name: "kernel", data: "k" }]);
    await w.publish("qemu_aarch64_linux", "0.0.25", [{ name: "kernel", data: "old" }], {
      released_at: "2025-01-01T00:00:00Z",
    });
    assert.equal((await w.cli(["-q", "sync"])).code, 0);
    assert.equal(
      (await w.cli(["-q", "pull", "phytiumpi-freertos", "qemu_aarch64_linux:0.0.25"])).code,
      0,
    );
    bin = join(w.root, "bin");
    await mkdir(bin);
    const shim = join(bin, "axvisor-image");
    await writeFile(shim, `#!/bin/sh\nexec "${process.execPath}" "${CLI}" "$@"\n`);
    await chmod(shim, 0o755);
    for (const shell of ["bash", "zsh", "fish"]) {
      const out = await w.cli(["completion", shell]);
      assert.equal(out.code, 0, out.stderr);
      scripts[shell] = join(w.root, `completion.${shell}`);
      await writeFile(scripts[shell], out.stdout);
    }
  });
  after(() => w.close());

  it("carries no image names: it asks the CLI for them", async () => {
    for (const shell of ["bash", "zsh", "fish"]) {
      const { readFile } = await import("node:fs/promises");
      const text = await readFile(scripts[shell]!, "utf8");
      assert.doesNotMatch(text, /qemu_aarch64_linux/);
      assert.match(text, /--names/);
      assert.match(text, /prune/, "commands come from the program");
    }
    const names = await w.cli(["ls", "--names", "qemu"]);
    assert.equal(names.stdout, "qemu_aarch64_linux\nqemu_riscv64_linux\n");
    const help = await w.cli(["ls", "--help"]);
    assert.doesNotMatch(help.stdout, /--names/, "the helper is hidden");
    const bad = await w.cli(["completion", "tcsh"]);
    assert.equal(bad.code, 2);
  });

  for (const shell of ["bash", "zsh", "fish"] as const) {
    it(`${shell} -n accepts the ${shell} script`, { skip: missing(shell) }, async () => {
      await run(shells[shell]!, ["-n", scripts[shell]!]);
    });
  }

  /**
   * COMPREPLY of the bash function for the words typed so far (the last one being completed),
   * split as bash splits them (at the colons of COMP_WORDBREAKS too), with COMP_LINE set.
   */
  async function bashComplete(words: string[]): Promise<string[]> {
    const split = words.flatMap((word) => word.split(/(:)/).filter((part) => part !== ""));
    if (words.at(-1) === "") split.push("");
    const quoted = split.map((word) => `'${word}'`).join(" ");
    const line = words.join(" ");
    const script = `source '${scripts.bash}'; COMP_WORDS=(${quoted}); COMP_CWORD=${split.length - 1}; COMP_LINE='${line}'; COMP_POINT=${line.length}; _axvisor_image; printf '%s\\n' "\${COMPREPLY[@]}"`;
    const { stdout } = await run(shells.bash!, ["-c", script], { env: env() });
    return stdout.split("\n").filter((l) => l !== "");
  }

  it(
    "bash completes commands, options, subcommands and image names",
    { skip: missing("bash") },
    async () => {
      assert.deepEqual(await bashComplete(["axvisor-image", "pr"]), ["prune"]);
      assert.deepEqual(await bashComplete(["axvisor-image", "registry", ""]), [
        "add",
        "check",
        "sign",
        "keygen",
      ]);
      assert.deepEqual(await bashComplete(["axvisor-image", "completion", ""]), [
        "bash",
        "zsh",
        "fish",
      ]);
      assert.deepEqual(await bashComplete(["axvisor-image", "prune", "--"]), [
        "--dry-run",
        "--keep",
        "--help",
      ]);
      assert.deepEqual(await bashComplete(["axvisor-image", "-S", w.store, "pull", "q"]), [
        "qemu_aarch64_linux",
        "qemu_riscv64_linux",
      ]);
      assert.deepEqual(await bashComplete(["axvisor-image", "-S", w.store, "info", "ph"]), [
        "phytiumpi-freertos",
      ]);
    },
  );

  it(
    "bash completes versions after NAME:, and rm, path and verify what is in the store",
    { skip: missing("bash") },
    async () => {
      const at = (...words: string[]) => bashComplete(["axvisor-image", "-S", w.store, ...words]);
      assert.deepEqual((await at("pull", "qemu_aarch64_linux:")).sort(), ["0.0.25", "0.0.26"]);
      assert.deepEqual((await at("pull", "qemu_aarch64_linux:0.0.2")).sort(), ["0.0.25", "0.0.26"]);
      assert.deepEqual(await at("rm", ""), ["phytiumpi-freertos", "qemu_aarch64_linux"]);
      assert.deepEqual(await at("path", "qemu_aarch64_linux:"), ["0.0.25"]);
      assert.deepEqual(await at("verify", "q"), ["qemu_aarch64_linux"]);
    },
  );

  it(
    "zsh offers image names and subcommands (compadd stubbed to print)",
    { skip: missing("zsh") },
    async () => {
      const complete = async (words: string[]) => {
        const quoted = words.map((word) => `'${word}'`).join(" ");
        const script =
          'compdef() {}; compadd() { shift; print -l -- "$@" }; _files() { print FILES }; ' +
          `source '${scripts.zsh}'; words=(${quoted}); CURRENT=${words.length}; _axvisor_image`;
        const { stdout } = await run(shells.zsh!, ["-f", "-c", script], { env: env() });
        return stdout.split("\n").filter((l) => l !== "");
      };
      assert.deepEqual(await complete(["axvisor-image", "-S", w.store, "pull", ""]), [
        "phytiumpi-freertos",
        "qemu_aarch64_linux",
        "qemu_riscv64_linux",
      ]);
      assert.deepEqual(await complete(["axvisor-image", "-S", w.store, "path", ""]), [
        "phytiumpi-freertos",
        "qemu_aarch64_linux",
      ]);
      assert.deepEqual(
        (await complete(["axvisor-image", "-S", w.store, "pull", "qemu_aarch64_linux:"])).sort(),
        [
          "phytiumpi-freertos:0.0.26",
          "qemu_aarch64_linux:0.0.25",
          "qemu_aarch64_linux:0.0.26",
          "qemu_riscv64_linux:0.0.26",
        ],
      );
      assert.deepEqual(await complete(["axvisor-image", "registry", ""]), [
        "add",
        "check",
        "sign",
        "keygen",
      ]);
      assert.deepEqual(await complete(["axvisor-image", "resize", ""]), ["FILES"]);
    },
  );

  it("fish completes commands and image names", { skip: missing("fish") }, async () => {
    const complete = async (line: string) => {
      const script = `source '${scripts.fish}'; complete -C '${line}'`;
      const { stdout } = await run(shells.fish!, ["--no-config", "-c", script], { env: env() });
      return stdout
        .split("\n")
        .filter((l) => l !== "")
        .map((l) => l.split("\t")[0]);
    };
    assert.deepEqual(await complete("axvisor-image pr"), ["prune"]);
    assert.deepEqual(await complete(`axvisor-image -S ${w.store} pull qemu_r`), [
      "qemu_riscv64_linux",
    ]);
    assert.deepEqual(await complete(`axvisor-image -S ${w.store} rm q`), ["qemu_aarch64_linux"]);
    assert.deepEqual(
      (await complete(`axvisor-image -S ${w.store} pull qemu_aarch64_linux:`)).sort(),
      ["qemu_aarch64_linux:0.0.25", "qemu_aarch64_linux:0.0.26"],
    );
    assert.deepEqual((await complete("axvisor-image registry ")).sort(), [
      "add",
      "check",
      "keygen",
      "sign",
    ]);
  });
});
