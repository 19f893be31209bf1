/**
 * Output that cannot be used against the user, through the CLI: control characters from a
 * registry never reach the terminal raw, credentials in URLs are never printed, a closed or full
 * stdout ends the command with at most one `error:` line, and every figure is rounded.
 */
import assert from "node:assert/strict";
import { closeSync, openSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { formatBytes } from "../../src/cli/human-readable.js";
import { escapeJsonText, printable, redactCredentials } from "../../src/text.js";
import { closedPort } from "../helpers/fault-server.js";
import {
  CLI,
  makeTarGz,
  runCli,
  runProcess,
  sha256,
  type CliRun,
  type TestEntry,
} from "../helpers/images.js";
import { startWorld, type World } from "../helpers/world.js";

/** What must never be printed raw: every control character but the newline, and the rest. */
// eslint-disable-next-line no-control-regex -- raw control characters are what it looks for
const RAW = /[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]/u;

/** A registry (TOML text) of `entries`, every string escaped as TOML allows (`\u001b`...). */
function registryText(entries: (TestEntry & { extra?: string })[]): string {
  const str = (value: string) => escapeJsonText(JSON.stringify(value));
  return entries
    .map((e) =>
      [
        "[[images]]",
        `name = ${str(e.name)}`,
        `version = ${str(e.version ?? "1.0")}`,
        `description = ${str(e.description ?? "d")}`,
        `sha256 = ${str(e.sha256)}`,
        `arch = ${str(e.arch ?? "aarch64")}`,
        `url = ${str(e.url)}`,
        ...(e.extra === undefined ? [] : [e.extra]),
        "",
      ].join("\n"),
    )
    .join("\n");
}

/** Neither output of `run` carries a raw control character, nor a line starting as forged. */
function assertClean(run: CliRun, what: string): void {
  for (const [name, text] of [
    ["stdout", run.stdout],
    ["stderr", run.stderr],
  ] as const) {
    const raw = RAW.exec(text);
    assert.equal(raw, null, `${what}: raw U+${raw?.[0].codePointAt(0)?.toString(16)} on ${name}`);
    assert.doesNotMatch(text, /^(error|warning): forged/m, `${what}: a forged line on ${name}`);
  }
}

describe("the output boundary (units)", () => {
  it("printable escapes C0, DEL, C1, line separators and bidi controls, and only them", () => {
    assert.equal(
      printable("a\x1b[2Jb\x07\r\n\t\x00\x7f\u009b\u2028\u2029\u202e\u2066 é中"),
      "a\\x1b[2Jb\\x07\\r\\n\\t\\x00\\x7f\\x9b\\u2028\\u2029\\u202e\\u2066 é中",
    );
    const once = printable("x\x1b\ny");
    assert.equal(printable(once), once, "idempotent");
  });

  it("redactCredentials hides the whole userinfo of every URL in a text", () => {
    for (const [text, shown] of [
      ["get http://user:secret@host/x failed", "get http://***@host/x failed"],
      ["https://token@h:8080/a?b=c@d", "https://***@h:8080/a?b=c@d"],
      ["HTTP://U:P@H/ and mail me@example.org", "HTTP://***@H/ and mail me@example.org"],
      ["http://a@b@host/p", "http://***@host/p"], // the last @ ends the userinfo
      ["http:user:pw@host/x", "http:***@host/x"], // parsed as http://user:pw@host/x
      ["http://u:pa\tss@host/", "http://***@host/"], // the URL parser drops the tab
      ["oci://ghcr.io/r/x@sha256:abcd", "oci://ghcr.io/r/x@sha256:abcd"],
      ["https://host/path@x", "https://host/path@x"],
    ] as const) {
      assert.equal(redactCredentials(text), shown);
      assert.equal(redactCredentials(shown), shown, "idempotent");
    }
  });

  it("escapeJsonText keeps the JSON value and leaves nothing raw", () => {
    const value = { d: 'a\x1b\u009b\u2028\u202e\x7f\n"\\' };
    const text = escapeJsonText(JSON.stringify(value));
    assert.equal(RAW.exec(text), null);
    assert.deepEqual(JSON.parse(text), value);
  });

  it("formatBytes rounds every figure: whole bytes, three significant digits above", () => {
    assert.equal(formatBytes(442.4778761061947), "442 B");
    assert.equal(formatBytes(0), "0 B");
    assert.equal(formatBytes(1023.7), "1.00 KiB");
    assert.equal(formatBytes(1536), "1.50 KiB");
    assert.equal(formatBytes(12.345 * 1024 * 1024), "12.3 MiB");
    assert.equal(formatBytes(137.4 * 1024 * 1024), "137 MiB");
    assert.equal(formatBytes(Number.NaN), "?");
  });
});

describe("control characters from a registry (CLI)", () => {
  let w: World;
  const DESCRIPTION =
    "evil\x1b[2J\x1b[H\x07\r\nerror: forged line\u009b31m\u202etxt.exe\u2028after\x7f\u2066";
  before(async () => {
    w = await startWorld();
    const archive = await makeTarGz([{ name: "kernel", data: "k" }]);
    w.server.setFile("/files/ctl.tar.gz", archive);
    w.server.setFile(
      "/hostile.toml",
      registryText([
        {
          name: "ctl",
          description: DESCRIPTION,
          arch: "aarch64\x1b]0;pwned\x07\nwarning: forged arch",
          url: `${w.server.url("/files/ctl.tar.gz")}#\x1b[31m\nerror: forged url\u009b`,
          sha256: sha256(archive),
          extra: `"key\\u009b\\u001b[1m" = 1`,
        },
        {
          name: "ctl404",
          url: `${w.server.url("/files/missing.tar.gz")}?\x1b[5m\u202e`,
          sha256: "0".repeat(64),
        },
      ]),
    );
  });
  after(() => w.close());

  const cli = (args: string[]) =>
    w.cli(["-R", w.server.url("/hostile.toml"), ...args], { env: {} });

  it("sync warnings, ls, ls -v and info print them escaped, one line each", async () => {
    const sync = await cli(["sync"]);
    assert.equal(sync.code, 0, sync.stderr);
    assert.match(sync.stderr, /^warning: .*unknown key "key\\x9b\\u001b\[1m" ignored$/m);
    assertClean(sync, "sync");
    for (const args of [["ls"], ["ls", "-v"], ["info", "ctl"]]) {
      const run = await cli(args);
      assert.equal(run.code, 0, run.stderr);
      assertClean(run, args.join(" "));
      assert.ok(run.stdout.includes("evil\\x1b[2J\\x1b[H\\x07\\r\\nerror: forged line\\x9b31m"));
      assert.ok(run.stdout.includes("\\u202etxt.exe\\u2028after\\x7f\\u2066"));
      assert.ok(run.stdout.includes("aarch64\\x1b]0;pwned\\x07\\nwarning: forged arch"));
    }
    const ls = await cli(["ls"]);
    assert.equal(ls.stdout.split("\n").length, 4, "header, two rows, final newline");
    const info = await cli(["info", "ctl"]);
    assert.match(
      info.stdout,
      /^ {2}url +http:\/\/127\.0\.0\.1:\d+\/files\/ctl\.tar\.gz#\\x1b\[31m\\nerror: forged url\\x9b$/m,
    );
  });

  it("pull status lines and error lines print them escaped", async () => {
    const ok = await cli(["pull", "ctl"]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stderr, /^ctl: downloading .*#\\x1b\[31m\\nerror: forged url\\x9b$/m);
    assertClean(ok, "pull ctl");
    const failed = await cli(["pull", "ctl404"]);
    assert.equal(failed.code, 1);
    assert.match(failed.stderr, /^error: ctl404: .*missing\.tar\.gz\?(%1B|\\x1b)\[5m/m);
    assertClean(failed, "pull ctl404");
  });

  it("--json escapes them too (C1, DEL, U+2028, bidi as \\uXXXX) and keeps the values", async () => {
    for (const args of [
      ["ls", "--json"],
      ["info", "ctl", "--json"],
      ["pull", "ctl", "--json"],
    ]) {
      const run = await cli(args);
      assert.equal(run.code, 0, run.stderr);
      assertClean(run, args.join(" "));
      const rows = JSON.parse(run.stdout) as { name: string; description: string }[];
      assert.equal(rows.find((r) => r.name === "ctl")?.description, DESCRIPTION);
    }
  });
});

describe("credentials in URLs are never printed (CLI)", () => {
  let w: World;
  const SECRETS = ["s3cr3t-image", "s3cr3t-mirror", "s3cr3t-registry", "s3cr3t-proxy"];
  let base = "";
  const withUser = (url: string, secret: string) => url.replace("http://", `http://u:${secret}@`);
  before(async () => {
    w = await startWorld();
    const archive = await makeTarGz([{ name: "kernel", data: "k" }]);
    w.server.setFile("/files/cred.tar.gz", archive);
    w.server.setFile("/files/cred2.tar.gz", archive);
    base = w.server.url("/");
    w.server.setFile(
      "/cred.toml",
      registryText([
        {
          name: "cred",
          url: withUser(w.server.url("/files/cred.tar.gz"), "s3cr3t-image"),
          sha256: sha256(archive),
        },
        {
          name: "cred2",
          url: withUser(w.server.url("/files/cred2.tar.gz"), "s3cr3t-image"),
          sha256: sha256(archive),
        },
        {
          name: "gone",
          url: withUser(w.server.url("/files/gone.tar.gz"), "s3cr3t-image"),
          sha256: sha256(archive),
        },
      ]),
    );
  });
  after(() => w.close());

  const cli = (args: string[], env: Record<string, string> = {}) =>
    w.cli(["-R", w.server.url("/cred.toml"), ...args], { env });
  const assertNoSecret = (run: CliRun, what: string) => {
    for (const secret of SECRETS) {
      assert.ok(!run.stdout.includes(secret), `${what}: ${secret} on stdout:\n${run.stdout}`);
      assert.ok(!run.stderr.includes(secret), `${what}: ${secret} on stderr:\n${run.stderr}`);
    }
  };

  it("pull (succeeding and failing), ls, info and their --json redact the userinfo", async () => {
    const pulled = await cli(["pull", "cred"]);
    assert.equal(pulled.code, 0, pulled.stderr);
    assert.match(
      pulled.stderr,
      /^cred: downloading http:\/\/\*\*\*@127\.0\.0\.1:\d+\/files\/cred\.tar\.gz$/m,
    );
    assertNoSecret(pulled, "pull");
    const failed = await cli(["pull", "gone"]);
    assert.equal(failed.code, 1);
    assert.match(
      failed.stderr,
      /^error: gone: .*http:\/\/\*\*\*@127\.0\.0\.1:\d+\/files\/gone\.tar\.gz/m,
    );
    assertNoSecret(failed, "failing pull");
    for (const args of [
      ["ls"],
      ["ls", "-v"],
      ["info", "cred"],
      ["ls", "--json"],
      ["info", "cred", "--json"],
    ]) {
      const run = await cli(args);
      assert.equal(run.code, 0, run.stderr);
      assertNoSecret(run, args.join(" "));
    }
    const info = JSON.parse((await cli(["info", "cred", "--json"])).stdout) as { url: string }[];
    assert.match(info[0]!.url, /^http:\/\/\*\*\*@127\.0\.0\.1:\d+\/files\/cred\.tar\.gz$/);
    const json = await cli(["pull", "cred", "gone", "--json"]);
    assert.equal(json.code, 1);
    assertNoSecret(json, "pull --json");
    const [ok, bad] = JSON.parse(json.stdout) as { url?: string; error?: string }[];
    assert.match(ok!.url!, /^http:\/\/\*\*\*@/);
    assert.match(bad!.error!, /http:\/\/\*\*\*@/);
  });

  it("--mirror, -R and `config` with credentials redact them", async () => {
    const mirror = `${withUser(base, "s3cr3t-image")}files/=${withUser(base, "s3cr3t-mirror")}mirror/`;
    const mirrored = await cli(["--mirror", mirror, "pull", "cred2"]);
    assert.equal(mirrored.code, 0, mirrored.stderr);
    assert.match(mirrored.stderr, /http:\/\/\*\*\*@127\.0\.0\.1:\d+\/mirror\/cred2\.tar\.gz/);
    assertNoSecret(mirrored, "pull --mirror");
    const registry = withUser(w.server.url("/cred.toml"), "s3cr3t-registry");
    for (const args of [["sync"], ["config"], ["--mirror", mirror, "config"]]) {
      const run = await w.cli(["-R", registry, ...args]);
      assert.equal(run.code, 0, run.stderr);
      assertNoSecret(run, args.join(" "));
    }
    const config = await w.cli(["-R", registry, "--mirror", mirror, "config"]);
    assert.match(
      config.stdout,
      /^registry = "http:\/\/\*\*\*@127\.0\.0\.1:\d+\/cred\.toml" {2}# flag$/m,
    );
    assert.match(config.stdout, /replace = "http:\/\/\*\*\*@127\.0\.0\.1:\d+\/mirror\/"/);
  });

  it("a proxy with credentials that refuses connections: retry and error lines redact both", async () => {
    const proxy = `http://proxyuser:s3cr3t-proxy@127.0.0.1:${await closedPort()}`;
    const store = ["-S", join(w.root, "proxied")];
    assert.equal((await cli([...store, "sync"])).code, 0);
    const run = await cli([...store, "pull", "cred2"], { HTTP_PROXY: proxy, HTTPS_PROXY: proxy });
    assert.equal(run.code, 1);
    assert.match(run.stderr, /^cred2: retry 1\/5 /m);
    assertNoSecret(run, "pull through a proxy");
  });
});

/**
 * Runs `axvisor-image ...args | head -c 100` in bash (real pipes): `stdout` is what head printed,
 * `code` the CLI's own exit status.
 */
function runIntoHead(args: string[]): Promise<CliRun> {
  const script = '"$@" | head -c 100; exit "${PIPESTATUS[0]}"';
  return runProcess("bash", ["-c", script, "bash", process.execPath, CLI, ...args]);
}

/** Runs the CLI with its stdout on `/dev/full` (every write fails with ENOSPC). */
async function runToDevFull(args: string[]): Promise<CliRun> {
  const full = openSync("/dev/full", "w");
  try {
    return await runCli(args, { stdoutFd: full });
  } finally {
    closeSync(full);
  }
}

describe("a closed or full stdout (CLI)", () => {
  let w: World;
  let big: string[];
  before(async () => {
    w = await startWorld();
    // Far more than a pipe holds (64 KiB): the reader closes it while the table is written.
    const archive = await makeTarGz([{ name: "k", data: "k" }]);
    w.server.setFile("/files/a.tar.gz", archive);
    const entries = Array.from({ length: 1500 }, (_, i) => ({
      name: `image_${String(i).padStart(4, "0")}`,
      description: `guest image number ${i} `.padEnd(120, "."),
      url: w.server.url("/files/a.tar.gz"),
      sha256: sha256(archive),
    }));
    w.server.setFile("/big.toml", registryText(entries));
    big = ["-S", w.store, "-R", w.server.url("/big.toml")];
    const sync = await w.cli(["-R", w.server.url("/big.toml"), "sync"]);
    assert.equal(sync.code, 0, sync.stderr);
  });
  after(() => w.close());

  it("`ls | head -1`, `ls --json | head -c 100`: exit 141 quietly, no stack trace", async () => {
    for (const args of [["ls"], ["ls", "-v"], ["ls", "--json"]]) {
      const run = await runIntoHead([...big, ...args]);
      assert.equal(run.signal, null);
      assert.equal(run.code, 141, `${args.join(" ")}: ${run.stderr}`);
      assert.equal(run.stderr, "", `${args.join(" ")}: nothing on stderr`);
      assert.ok(run.stdout.length > 0);
    }
  });

  it("`--help | head -c 100` never prints a stack trace: the help is one write (exit 0)", async () => {
    for (let i = 0; i < 10; i++) {
      const run = await runIntoHead(["--help"]);
      assert.equal(run.stderr, "");
      assert.equal(run.code, 0);
      assert.match(run.stdout, /^Usage: axvisor-image/);
    }
  });

  it("`ls > /dev/full` (and --json, --help): one error line, exit 1", async () => {
    for (const args of [[...big, "ls"], [...big, "ls", "--json"], ["--help"]]) {
      const run = await runToDevFull(args);
      assert.equal(run.code, 1, run.stderr);
      assert.equal(
        run.stderr,
        "error: cannot write to standard output: no space left on device\n",
        args.join(" "),
      );
    }
  });
});

describe("rounded figures (CLI)", () => {
  let w: World;
  before(async () => {
    w = await startWorld();
  });
  after(() => w.close());

  it("the plain progress lines of a slow pull print whole bytes per second", async () => {
    const img = await w.publish("slow", "1.0", [{ name: "kernel", data: "k".repeat(300) }]);
    assert.equal((await w.cli(["sync"])).code, 0);
    // Half the archive, then silence until --stall-timeout: over a second for a few hundred bytes.
    w.server.setFault(img.path, { kind: "stall", afterBytes: img.archive.length >> 1 });
    const run = await w.cli(["pull", "slow", "--stall-timeout", "1"]);
    assert.equal(run.code, 0, run.stderr);
    const size = img.archive.length;
    assert.match(run.stderr, new RegExp(`^slow: receiving ${size} B$`, "m"));
    assert.match(run.stderr, new RegExp(`^slow: \\d+% \\(\\d+ B of ${size} B\\)$`, "m"));
    assert.match(run.stderr, new RegExp(`^slow: ${size} B in [\\d.]+s \\(\\d+ B/s\\)$`, "m"));
    assert.doesNotMatch(run.stderr, /\d\.\d{3,}/, "no figure with more than two decimals");
  });
});
