/** Test fixtures: real archives, registries and temporary stores, and the CLI as a subprocess. */
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import { member, tar } from "./tar.js";

/** One member of a test archive. */
export interface Member {
  name: string;
  data?: Buffer | string;
  mode?: number;
  type?: "file" | "directory" | "symlink";
  linkname?: string;
}

const TYPEFLAGS = { file: "0", directory: "5", symlink: "2" } as const;

/** A plain tar of `members`. */
export async function makeTar(members: Member[]): Promise<Buffer> {
  return tar(
    ...members.map((m) =>
      member({
        name: m.name,
        type: TYPEFLAGS[m.type ?? "file"],
        data: m.type === "directory" || m.type === "symlink" ? undefined : m.data,
        mode: m.mode,
        linkname: m.linkname,
      }),
    ),
  );
}

/** A .tar.gz of `members`. */
export async function makeTarGz(members: Member[]): Promise<Buffer> {
  return gzipSync(await makeTar(members));
}

/** Hex sha256 of `data`. */
export function sha256(data: Buffer | string): string {
  return createHash("sha256").update(data).digest("hex");
}

/** A registry entry for tests; `url` and `sha256` are required, the rest has defaults. */
export interface TestEntry {
  name: string;
  version?: string;
  url: string;
  sha256: string;
  released_at?: string;
  arch?: string;
  description?: string;
}

/** Registry TOML text for `entries` (and optional includes). */
export function registryToml(entries: TestEntry[], includes: string[] = []): string {
  const parts = includes.map((url) => `[[includes]]\nurl = ${JSON.stringify(url)}\n`);
  for (const e of entries) {
    parts.push(
      [
        "[[images]]",
        `name = ${JSON.stringify(e.name)}`,
        `version = ${JSON.stringify(e.version ?? "0.0.1")}`,
        `description = ${JSON.stringify(e.description ?? `${e.name} guest`)}`,
        `sha256 = ${JSON.stringify(e.sha256)}`,
        `arch = ${JSON.stringify(e.arch ?? "aarch64")}`,
        `url = ${JSON.stringify(e.url)}`,
        ...(e.released_at ? [`released_at = ${JSON.stringify(e.released_at)}`] : []),
        "",
      ].join("\n"),
    );
  }
  return parts.join("\n");
}

/** A temporary directory, removed by the returned cleanup. */
export async function tempDir(
  prefix = "axi-test-",
): Promise<{ path: string; cleanup: () => Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), prefix));
  return { path, cleanup: () => rm(path, { recursive: true, force: true }) };
}

/** The CLI executable of this checkout. */
export const CLI = fileURLToPath(new URL("../../bin/axvisor-image", import.meta.url));

/** What a CLI run printed and how it ended. */
export interface CliRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/**
 * Environment for CLI runs: no proxies, no `AXVISOR_*` settings and no `CI` of the machine running
 * the tests leaking in (a `CI` set by the CI service turns the progress bars off).
 */
export function cliEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && !/^(https?_proxy|no_proxy|AXVISOR_|CI$)/i.test(k)) env[k] = v;
  }
  return { ...env, AXVISOR_IMAGE_RETRY_BASE_MS: "20", ...extra };
}

/** Options of {@link runCli} and {@link runProcess}. */
export interface RunOptions {
  cwd?: string;
  env?: Record<string, string>;
  /** Killed with SIGKILL after this long (default 60 s): a process stuck in a system call (the
   *  open of a FIFO) does not end on a SIGTERM. */
  timeoutMs?: number;
  /** Where its stdout goes: a pipe read into `stdout` (default), or this file descriptor. */
  stdoutFd?: number;
  /** Written to its standard input, then closed (default: no standard input). */
  input?: string;
}

/** Runs `command ...args` to completion; see {@link RunOptions}. */
export function runProcess(
  command: string,
  args: string[],
  options: RunOptions = {},
): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: options.env ?? cliEnv(),
      stdio: [options.input === undefined ? "ignore" : "pipe", options.stdoutFd ?? "pipe", "pipe"],
      timeout: options.timeoutMs ?? 60_000,
      killSignal: "SIGKILL",
    });
    let stdout = "";
    let stderr = "";
    child.stdout?.on("data", (d: Buffer) => (stdout += d));
    child.stderr?.on("data", (d: Buffer) => (stderr += d));
    child.stdin?.on("error", () => {}); // a child that exits before reading it all
    child.stdin?.end(options.input);
    child.on("error", reject);
    child.on("close", (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

/** Runs `axvisor-image ...args` to completion; see {@link RunOptions}. */
export function runCli(args: string[], options: RunOptions = {}): Promise<CliRun> {
  return runProcess(process.execPath, [CLI, ...args], options);
}
