/**
 * Progress and status lines of `pull`: the plain lines of logs and CI (a resumed pull says where
 * it resumed and counts only its own bytes; every status line names its image), and the live
 * bars on a real terminal 60 columns wide (names aligned, nothing wrapped, the time left always
 * shown, nothing left behind, nothing drawn after Ctrl-C).
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { stat } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { formatBytes } from "../../src/cli/human-readable.js";
import { missing } from "../helpers/daemon.js";
import { CLI, cliEnv } from "../helpers/images.js";
import { Screen, startInTerminal } from "../helpers/terminal.js";
import { startWorld, type World } from "../helpers/world.js";

const noScript = missing("script");
/** A bar line: the name, then `[`, the bar, `]`. */
const BAR = /^(\S+) +\[[=> ]*\]/;

describe("plain progress lines (not a terminal)", () => {
  let w: World;
  before(async () => {
    w = await startWorld();
  });
  after(() => w.close());

  it("a resumed pull says where it resumes and counts only the bytes it received", async () => {
    const img = await w.publish("resumable", "1.0", [{ name: "kernel", data: randomBytes(500) }]);
    const size = img.archive.length;
    assert.ok(size > 300 && size < 1024, "whole bytes in every figure");
    assert.equal((await w.cli(["-q", "sync"])).code, 0);
    w.server.setFault(img.path, { kind: "stall", afterBytes: 300 });
    // The first pull is stopped once it has received bytes (its quarter line says so): those
    // are in the .part, however many of the 300 sent it had read by then.
    const first = spawn(
      process.execPath,
      [CLI, "-S", w.store, "-R", w.registryUrl, "pull", "resumable"],
      {
        env: cliEnv(),
        stdio: ["ignore", "ignore", "pipe"],
      },
    );
    const closed = once(first, "close");
    let said = "";
    await new Promise<void>((resolve) => {
      first.stderr.on("data", (chunk: Buffer) => {
        said += String(chunk);
        if (/^resumable: \d+% /m.test(said)) resolve();
      });
      void closed.then(() => resolve());
    });
    first.kill("SIGINT");
    await closed;
    const kept = (await stat(join(w.store, "resumable.tar.gz.part"))).size;
    assert.ok(kept > 0 && kept <= 300, `${kept} bytes kept:\n${said}`);

    const run = await w.cli(["pull", "resumable"]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stderr, new RegExp(`^resuming resumable at ${kept} B of ${size} B$`, "m"));
    assert.doesNotMatch(run.stderr, /receiving/);
    assert.match(
      run.stderr,
      new RegExp(
        `^resumable: ${size - kept} B in [\\d.]+s \\([\\d.]+ \\w+/s\\), resumed at ${kept} B$`,
        "m",
      ),
    );
  });

  it("every status line of a pull names its image (mirrors, retries, resumes)", async () => {
    const img = await w.publish("named", "1.0", [{ name: "kernel", data: randomBytes(2000) }]);
    w.server.setFile("/good-mirror/named-1.0.tar.gz", img.archive);
    w.server.setFault("/good-mirror/named-1.0.tar.gz", { kind: "status", status: 503 });
    assert.equal((await w.cli(["-q", "sync"])).code, 0);
    const files = w.server.url("/files/");
    const run = await w.cli([
      "--mirror",
      `${files}=${w.server.url("/no-mirror/")}`,
      "--mirror",
      `${files}=${w.server.url("/good-mirror/")}`,
      "pull",
      "named",
    ]);
    assert.equal(run.code, 0, run.stderr);
    const lines = run.stderr.trimEnd().split("\n");
    assert.ok(lines.some((l) => /retry 1\/5/.test(l)));
    assert.ok(lines.some((l) => /trying the next URL/.test(l)));
    assert.ok(lines.some((l) => /downloading from .*good-mirror/.test(l)));
    for (const line of lines) assert.match(line, /^named: /, line);
  });
});

describe("progress bars on a terminal 60 columns wide", { skip: noScript }, () => {
  let w: World;
  const short = "a";
  const long = "a_rather_long_image_name";
  before(async () => {
    w = await startWorld();
    for (const name of [short, long, "stopped"]) {
      await w.publish(name, "1.0", [{ name: "kernel", data: randomBytes(1 << 20) }]);
    }
    assert.equal((await w.cli(["-q", "sync"])).code, 0);
  });
  after(() => w.close());

  const pty = (args: string[]) =>
    startInTerminal(["-S", w.store, "-R", w.registryUrl, ...args], { columns: 60 });

  it("aligns the names, never wraps, always shows the time left, and leaves no bar or blank line", async () => {
    for (const name of [short, long]) {
      w.server.setFault(`/files/${name}-1.0.tar.gz`, { kind: "stall", afterBytes: 300_000 });
    }
    const run = pty(["pull", short, long, "--stall-timeout", "1"]);
    assert.equal(await run.closed, 0, run.output());
    const screen = new Screen(60, run.output());
    assert.deepEqual(
      screen.wrapped.filter((l) => BAR.test(l)),
      [],
      "no bar wrapped",
    );

    const bars = screen.finished.filter((line) => BAR.test(line));
    for (const name of [short, long]) {
      assert.ok(
        bars.some((l) => l.startsWith(`${name} `)),
        `a bar for ${name}`,
      );
    }
    for (const line of bars) {
      assert.ok(line.length < 60, line);
      assert.match(line, /\d+% .*ETA \S+$/, line);
      assert.equal(line.indexOf("["), long.length + 1, `names aligned: ${line}`);
      assert.equal(line.indexOf("ETA"), bars[0]!.indexOf("ETA"), `fields aligned: ${line}`);
    }

    assert.ok(!screen.lines().some((l) => BAR.test(l)), "no bar left on the screen");
    const results = [short, long].map((name) => join(w.store, name));
    const first = screen.lines().indexOf(results[0]!);
    assert.ok(first > 0, screen.lines().join("\n"));
    assert.deepEqual(screen.lines().slice(first, first + 2), results);
    assert.match(screen.lines()[first - 1]!, / in [\d.]+s \(/, "no blank line before the results");
  });

  it("draws no bar under CI, even on a terminal: plain lines instead", async () => {
    const img = await w.publish("in-ci", "1.0", [{ name: "kernel", data: randomBytes(1 << 16) }]);
    assert.equal((await w.cli(["-q", "sync"])).code, 0);
    const run = startInTerminal(["-S", w.store, "-R", w.registryUrl, "pull", "in-ci"], {
      columns: 60,
      env: { CI: "true" },
    });
    assert.equal(await run.closed, 0, run.output());
    const lines = new Screen(60, run.output()).finished;
    assert.ok(!lines.some((l) => BAR.test(l)), lines.join("\n"));
    assert.ok(
      lines.includes(
        `in-ci: 100% (${formatBytes(img.archive.length)} of ${formatBytes(img.archive.length)})`,
      ),
      lines.join("\n"),
    );
    assert.ok(lines.includes(join(w.store, "in-ci")), lines.join("\n"));
  });

  it("Ctrl-C erases the bars, says so, and nothing draws them again", async () => {
    w.server.setFault("/files/stopped-1.0.tar.gz", { kind: "stall", afterBytes: 300_000 });
    const run = pty(["pull", "stopped"]);
    await run.waitFor("ETA");
    await sleep(300);
    run.type("\x03");
    assert.equal(await run.closed, 1, run.output());
    const output = run.output();
    const after = output.slice(output.indexOf("interrupted: stopping"));
    assert.ok(after.length > 0, output);
    assert.doesNotMatch(after, /ETA|\[=/, "no bar drawn after the interruption");

    const lines = new Screen(60, output).lines();
    assert.ok(!lines.some((l) => BAR.test(l)), lines.join("\n"));
    const at = lines.indexOf("interrupted: stopping");
    const status = lines.findIndex((l) => l.startsWith("stopped: downloading "));
    assert.ok(status >= 0 && at > status, lines.join("\n"));
    // Between them, only the rest of the (wrapped) status line: no blank line, no ^C, no bar.
    assert.equal(lines.slice(status, at).join(""), output.match(/stopped: downloading \S+/)![0]);
    assert.match(lines[at + 1]!, /^error: pull of stopped interrupted$/);
    assert.match(lines[at + 2]!, /^hint: /);
  });
});

describe("command-line mistakes", () => {
  it("commander's suggestion is a hint: line like every other hint", async () => {
    const { runCli } = await import("../helpers/images.js");
    const command = await runCli(["pul", "x"]);
    assert.equal(command.code, 2);
    assert.equal(command.stderr, "error: unknown command 'pul'\nhint: did you mean pull?\n");
    const option = await runCli(["pull", "--verfy", "x"]);
    assert.equal(option.code, 2);
    assert.equal(option.stderr, "error: unknown option '--verfy'\nhint: did you mean --verify?\n");
  });
});
