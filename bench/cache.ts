/**
 * Where the benchmark keeps its generated archives: outside the repository, so that every
 * worktree (and every clean checkout) reuses them. `AXVISOR_BENCH_CACHE` names the directory;
 * by default it is `$XDG_CACHE_HOME/axvisor-image-bench` (`~/.cache/axvisor-image-bench`).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, openSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";

/** The benchmark's cache directory. */
export function benchCacheDir(): string {
  const explicit = process.env["AXVISOR_BENCH_CACHE"];
  if (explicit) return explicit;
  const base = process.env["XDG_CACHE_HOME"] || join(homedir(), ".cache");
  return join(base, "axvisor-image-bench");
}

/** Fixed mtime of every member and file (2024-01-01T00:00:00Z), in seconds. */
export const FIXED_EPOCH = 1704067200;

/** Resolves when `child` exits with status 0; rejects naming `what` otherwise. */
export function exited(child: ChildProcess, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code) =>
      code === 0 ? resolve() : reject(new Error(`${what} exited with status ${code}`)),
    );
  });
}

/** Runs `argv` to completion, quietly; a failure throws with what it printed on stderr. */
export async function run(argv: string[], env?: NodeJS.ProcessEnv): Promise<void> {
  const [program, ...args] = argv;
  const child = spawn(program!, args, {
    stdio: ["ignore", "ignore", "pipe"],
    env: env ? { ...process.env, ...env } : process.env,
  });
  let stderr = "";
  child.stderr!.setEncoding("utf8").on("data", (text: string) => {
    if (stderr.length < 4096) stderr += text;
  });
  await exited(child, program!).catch((err: Error) => {
    throw new Error(`${err.message}: ${stderr.trim()}`);
  });
}

/** The compressors the archives are made with: reproducible, multi-block for xz. */
export const COMPRESSORS = {
  gz: ["gzip", "-n", "-6"],
  // -T0 as a publisher would; the block size -6 uses in multi-threaded mode made explicit, so that
  // a one-core machine writes the same multi-block file.
  xz: ["xz", "-T0", "-6", "--block-size=24MiB"],
  zst: ["zstd", "-q", "-T0", "-3"],
} as const;

/** An archive suffix: `.tar.gz`, `.tar.xz`, `.tar.zst`. */
export type Compression = keyof typeof COMPRESSORS;

/**
 * Packs `members` of `dir` into `out` with the system `tar` (GNU format, sorted, fixed owners,
 * modes and times) piped into the `compression`'s compressor: the same inputs give the same bytes.
 */
export async function pack(
  dir: string,
  members: string[],
  out: string,
  compression: Compression,
): Promise<void> {
  const tar = spawn(
    "tar",
    ["--format=gnu", "--sort=name", "--owner=0", "--group=0", "--numeric-owner"].concat([
      `--mtime=@${FIXED_EPOCH}`,
      "--mode=u=rwX,go=rX",
      "-C",
      dir,
      "-cf",
      "-",
      ...members,
    ]),
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  const fd = openSync(out, "w");
  try {
    const [program, ...args] = COMPRESSORS[compression];
    const compressor = spawn(program, args, { stdio: ["pipe", fd, "inherit"] });
    tar.stdout!.pipe(compressor.stdin!);
    await Promise.all([exited(tar, "tar"), exited(compressor, program)]);
  } finally {
    closeSync(fd);
  }
}
