/**
 * Running commands for the benchmark: wall time with `process.hrtime` around `spawn` (hyperfine is
 * not assumed), CPU time and peak RSS through GNU `/usr/bin/time`, the peak of the whole process
 * tree's RSS by sampling `/proc`, medians.
 *
 * GNU time's `%M` is `ru_maxrss` from `wait4`: the largest RSS any ONE process of the tree reached
 * (Linux keeps the maximum over waited-for descendants, not a sum). A pull that spawns `xz` uses
 * the memory of both at once, so the tree's sum is sampled too (every 20 ms: it can miss a peak
 * shorter than that).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** GNU time, used for peak RSS (`%M`: maximum resident set size in KiB). */
export const GNU_TIME = "/usr/bin/time";

/** Environment variables dropped from every command: they would reroute or reconfigure it. */
const DROPPED_ENV = /^(https?_proxy|all_proxy|no_proxy|axvisor_.*|curl_ca_bundle)$/i;

/** The environment every measured command runs with: no proxies, no AXVISOR_* settings. */
export function cleanEnv(): NodeJS.ProcessEnv {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !DROPPED_ENV.test(k)));
  return { ...env, NO_COLOR: "1" };
}

/** How to run one command. */
export interface CommandSpec {
  /** Program, then arguments. */
  argv: string[];
  /** Working directory (default: a directory without any `.image.toml` above it). */
  cwd?: string;
}

/** The outcome of one run. */
export interface RunOutcome {
  /** Wall time from spawn to exit, seconds. */
  seconds: number;
  stdout: string;
  stderr: string;
  /** Peak RSS of the largest single process (GNU time `%M`) in MiB, when measured. */
  peakRssMiB?: number;
  /** Peak of the sum of the RSS of every process of the tree (sampled) in MiB, when measured. */
  peakTreeRssMiB?: number;
  /** User + system CPU seconds of the whole tree (GNU time), when measured. */
  cpuSeconds?: number;
}

/** A command that failed (non-zero status or a signal). */
export class CommandFailed extends Error {
  constructor(argv: string[], status: string, stderr: string) {
    const lines = stderr.trim().split("\n");
    // A Node crash prints its message above the stack: show that line rather than the stack's end.
    const tail = lines.find((l) => /^(\w*Error|error)\b/.test(l)) ?? lines.slice(-3).join(" | ");
    super(`\`${argv.join(" ")}\` ${status}${tail ? `: ${tail}` : ""}`);
    this.name = "CommandFailed";
  }
}

let neutralCwd: string | undefined;

/** A temporary directory to run commands in, so that no `.image.toml` is discovered. */
export async function commandCwd(): Promise<string> {
  neutralCwd ??= await mkdtemp(join(tmpdir(), "axvisor-bench-cwd-"));
  return neutralCwd;
}

/** Removes the directory made by {@link commandCwd}. */
export async function removeCommandCwd(): Promise<void> {
  if (neutralCwd) await rm(neutralCwd, { recursive: true, force: true });
  neutralCwd = undefined;
}

/** Spawns `spec` with piped output; `started` sees the child right away (e.g. to kill it). */
export async function spawnCommand(
  spec: CommandSpec,
  started?: (child: ChildProcess) => void,
): Promise<RunOutcome & { status: number | null; signal: NodeJS.Signals | null }> {
  const [program, ...args] = spec.argv;
  const cwd = spec.cwd ?? (await commandCwd());
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  const t0 = process.hrtime.bigint();
  const child = spawn(program!, args, { cwd, env: cleanEnv(), stdio: ["ignore", "pipe", "pipe"] });
  started?.(child);
  child.stdout!.on("data", (c: Buffer) => out.push(c));
  child.stderr!.on("data", (c: Buffer) => err.push(c));
  let seconds = 0;
  const [status, signal] = await new Promise<[number | null, NodeJS.Signals | null]>(
    (done, fail) => {
      child.on("error", fail);
      child.on("exit", () => {
        seconds = Number(process.hrtime.bigint() - t0) / 1e9;
      });
      child.on("close", (code, sig) => done([code, sig]));
    },
  );
  return {
    seconds,
    status,
    signal,
    stdout: Buffer.concat(out).toString(),
    stderr: Buffer.concat(err).toString(),
  };
}

/** The processes below `pid` (children of any of its threads), recursively. */
function descendants(pid: number, out: number[] = []): number[] {
  let tasks: string[];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out; // gone
  }
  for (const task of tasks) {
    let children = "";
    try {
      children = readFileSync(`/proc/${pid}/task/${task}/children`, "utf8");
    } catch {
      continue;
    }
    for (const child of children.split(" ").filter(Boolean).map(Number)) {
      out.push(child);
      descendants(child, out);
    }
  }
  return out;
}

/** VmRSS of `pid` in KiB (0 when gone or a kernel thread). */
function rssKiB(pid: number): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    return Number(/^VmRSS:\s+(\d+)/m.exec(status)?.[1] ?? 0);
  } catch {
    return 0;
  }
}

/** Samples the summed RSS of the processes below `child` until stopped; returns the peak, KiB. */
function sampleTreeRss(child: ChildProcess): () => number {
  let peak = 0;
  const sample = () => {
    if (child.pid === undefined) return;
    const sum = descendants(child.pid).reduce((total, pid) => total + rssKiB(pid), 0);
    peak = Math.max(peak, sum);
  };
  const timer = setInterval(sample, 20);
  return () => {
    clearInterval(timer);
    return peak;
  };
}

/**
 * Runs `spec` once, timed; throws {@link CommandFailed} unless it exits 0. With `rss`, it runs
 * under GNU time (peak RSS of the largest process, CPU time) while the tree's RSS is sampled.
 */
export async function runTimed(
  spec: CommandSpec,
  options: { rss?: boolean } = {},
): Promise<RunOutcome> {
  if (!options.rss) return checked(spec, await spawnCommand(spec));
  const dir = await mkdtemp(join(tmpdir(), "axvisor-bench-rss-"));
  const report = join(dir, "rss");
  let stop: (() => number) | undefined;
  try {
    const wrapped = { ...spec, argv: [GNU_TIME, "-f", "%M %U %S", "-o", report, ...spec.argv] };
    const outcome = checked(
      spec,
      await spawnCommand(wrapped, (child) => (stop = sampleTreeRss(child))),
    );
    const treeKiB = stop!();
    const last = (await readFile(report, "utf8")).trim().split("\n").at(-1) ?? "";
    const [kib, user, system] = last.split(" ").map(Number);
    return {
      ...outcome,
      peakRssMiB: kib! / 1024,
      peakTreeRssMiB: treeKiB / 1024,
      cpuSeconds: user! + system!,
    };
  } finally {
    stop?.();
    await rm(dir, { recursive: true, force: true });
  }
}

function checked(
  spec: CommandSpec,
  outcome: RunOutcome & { status: number | null; signal: NodeJS.Signals | null },
): RunOutcome {
  if (outcome.status !== 0) {
    const status = outcome.signal
      ? `was killed by ${outcome.signal}`
      : `exited with status ${outcome.status}`;
    throw new CommandFailed(spec.argv, status, outcome.stderr);
  }
  return outcome;
}

/** Whether GNU time is there to measure peak RSS. */
export function haveGnuTime(): boolean {
  return existsSync(GNU_TIME);
}

/** The median of `values` (mean of the two middle ones for an even count). */
export function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}
