/**
 * `npm run bench`: the performance figures of `bin/axvisor-image` against the C tools (curl,
 * sha256sum, GNU tar) and `node -e 0`, each with its budget. Prints a table, writes the same
 * figures to `bench/.work/results.json`, and exits 1 when a line fails. See bench/README.md.
 */
import { availableParallelism } from "node:os";
import { mkdir, mkdtemp, readFile, rm } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { ChildProcess } from "node:child_process";
import { ensureImages, scanTree, type BenchImages, type GeneratedArchive } from "./image.js";
import {
  GNU_TIME,
  haveGnuTime,
  removeCommandCwd,
  runTimed,
  spawnCommand,
  type CommandSpec,
  type RunOutcome,
} from "./measure.js";
import {
  BIG_IMAGE,
  SYNC_INCLUDES,
  TINY_IMAGE,
  archiveServerPath,
  writeRegistries,
  type RegistryPaths,
} from "./registries.js";
import { LINES, SYNC_DELAY_MS } from "./budgets.js";
import {
  failedLine,
  formatReport,
  judge,
  writeResults,
  type Line,
  type LineSpec,
} from "./report.js";
import { startServer, type BenchServer } from "./server-control.js";

const BENCH_DIR = dirname(fileURLToPath(import.meta.url));
const WORK = join(BENCH_DIR, ".work");
const RUNS_DIR = join(WORK, "runs");
const TOOL = join(dirname(BENCH_DIR), "bin", "axvisor-image");
const MARKER = ".archive.sha256";

/** Runs of each big (cold) pull and its baselines. */
const COLD_RUNS = 5;
/** Runs of each small command (warm pulls, ls, --help, node -e 0). */
const SMALL_RUNS = 20;
/** Runs of the delayed sync. */
const SYNC_RUNS = 5;

const log = (line: string) => process.stderr.write(`bench: ${line}\n`);

/** Everything the sections share. */
interface Bench {
  server: BenchServer;
  images: BenchImages;
  registries: RegistryPaths;
  /** Server path of the big archive. */
  bigPath: string;
}

/** A fresh directory below bench/.work/runs. */
const freshDir = async (prefix: string) => mkdtemp(join(RUNS_DIR, `${prefix}-`));

/** `axvisor-image -S store ARGS...`. */
const tool = (store: string, ...args: string[]): CommandSpec => ({
  argv: [TOOL, "-S", store, ...args],
});

/** A fresh store with the benchmark registry synced (not timed). */
async function syncedStore(b: Bench, registry = b.registries.bench): Promise<string> {
  const store = await freshDir("store");
  await runTimed(tool(store, "-R", b.server.url(registry), "sync"));
  return store;
}

/** Flushes dirty pages, so that the next run does not pay for the writeback of earlier ones. */
async function flush(): Promise<void> {
  await spawnCommand({ argv: ["sync"] });
}

/** Drops a run directory, then {@link flush}. */
async function discard(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
  await flush();
}

/** Fails unless `dir` holds exactly the archive's tree (the tool's marker aside). */
async function checkTree(dir: string, archive: GeneratedArchive, what: string): Promise<void> {
  const got = await scanTree(dir, new Set([MARKER]));
  const want = archive.manifest;
  if (JSON.stringify(got) !== JSON.stringify(want)) {
    throw new Error(`${what}: extracted ${JSON.stringify(got)}, expected ${JSON.stringify(want)}`);
  }
}

/** Fails unless the tool pulled `image` into `store`: stdout names the tree, marker matches. */
async function checkPulled(
  out: RunOutcome,
  store: string,
  image: string,
  sha256: string,
): Promise<void> {
  const tree = join(store, image);
  if (out.stdout.trim() !== tree)
    throw new Error(`pull printed "${out.stdout.trim()}", expected ${tree}`);
  const marker = (await readFile(join(tree, MARKER), "utf8")).trim();
  if (marker !== sha256) throw new Error(`${tree}/${MARKER} holds "${marker}", expected ${sha256}`);
}

/** Runs a section; if it throws, its lines are reported as failed with the reason. */
async function section(specs: LineSpec[], body: () => Promise<Line[]>): Promise<Line[]> {
  try {
    return await body();
  } catch (err) {
    log(`failed: ${err instanceof Error ? err.message : String(err)}`);
    return specs.map((spec) => failedLine(spec, err));
  }
}

/** Cold pulls against B (curl, sha256sum, tar -xzf) and C (curl | tar -xz), with peak RSS. */
async function coldPulls(b: Bench): Promise<Line[]> {
  const url = b.server.url(b.bigPath);
  const big = b.images.big;
  const samples = {
    tool: [] as number[],
    B: [] as number[],
    C: [] as number[],
    rss: [] as number[],
  };
  const rssC: number[] = [];
  const contenders: Record<"tool" | "B" | "C", () => Promise<void>> = {
    tool: async () => {
      const store = await syncedStore(b);
      const out = await runTimed(tool(store, "-N", "pull", BIG_IMAGE), { rss: true });
      await checkPulled(out, store, BIG_IMAGE, big.sha256);
      await checkTree(join(store, BIG_IMAGE), big, "tool");
      samples.tool.push(out.seconds);
      samples.rss.push(out.peakRssMiB!);
      await discard(store);
    },
    B: async () => {
      const dir = await freshDir("B");
      const script =
        'curl -sf -o "$0/f" "$1" && sha256sum "$0/f" && mkdir "$0/x" && tar -xzf "$0/f" -C "$0/x"';
      const out = await runTimed({ argv: ["sh", "-c", script, dir, url] }, { rss: true });
      if (!out.stdout.startsWith(big.sha256))
        throw new Error(`B: sha256sum printed ${out.stdout.trim()}`);
      await checkTree(join(dir, "x"), big, "B");
      samples.B.push(out.seconds);
      await discard(dir);
    },
    C: async () => {
      const dir = await freshDir("C");
      const out = await runTimed(
        { argv: ["sh", "-c", 'curl -sf "$1" | tar -xz -C "$0"', dir, url] },
        { rss: true },
      );
      await checkTree(dir, big, "C");
      samples.C.push(out.seconds);
      rssC.push(out.peakRssMiB!);
      await discard(dir);
    },
  };
  const order = ["tool", "B", "C"] as const;
  for (let run = 0; run < COLD_RUNS; run++) {
    log(`cold pull, run ${run + 1}/${COLD_RUNS}`);
    for (let i = 0; i < order.length; i++) await contenders[order[(run + i) % order.length]!]();
  }
  return [
    judge(LINES.coldVsB, samples.tool, {
      baseline: { label: "B", samples: samples.B },
      note: "B = curl -s -o f URL && sha256sum f && tar -xzf f -C dir",
    }),
    judge(LINES.coldVsC, samples.tool, {
      baseline: { label: "C", samples: samples.C },
      note: "C = curl -s URL | tar -xz -C dir",
    }),
    judge(LINES.coldRss, samples.rss, {
      note:
        `maximum over ${COLD_RUNS} runs of ${GNU_TIME} -f %M; ` +
        `C (curl | tar) peaked at ${Math.max(...rssC).toFixed(1)} MiB`,
    }),
  ];
}

/** Warm pulls (big and tiny), `ls` on 20,000 entries and `--help`, against `node -e 0`. */
async function smallCommands(b: Bench): Promise<Line[]> {
  const warm = await syncedStore(b);
  for (const image of [BIG_IMAGE, TINY_IMAGE]) await runTimed(tool(warm, "-N", "pull", image));
  const lsStore = await syncedStore(b, b.registries.big);
  const lsUrl = b.server.url(b.registries.big);
  await flush();
  await b.server.reset();

  const commands = {
    node: { argv: [process.execPath, "-e", "0"] },
    warmBig: tool(warm, "-N", "pull", BIG_IMAGE),
    warmTiny: tool(warm, "-N", "pull", TINY_IMAGE),
    ls: tool(lsStore, "-R", lsUrl, "--auto-sync-threshold", "0", "ls"),
    help: { argv: [TOOL, "--help"] },
  };
  const samples = Object.fromEntries(
    Object.keys(commands).map((k) => [k, [] as number[]]),
  ) as Record<keyof typeof commands, number[]>;
  const names = Object.keys(commands) as (keyof typeof commands)[];
  let lsRows = 0;
  log(`small commands, ${SMALL_RUNS} runs each after a warm-up round`);
  for (let run = -1; run < SMALL_RUNS; run++) {
    for (let i = 0; i < names.length; i++) {
      const name = names[(run + 1 + i) % names.length]!;
      const out = await runTimed(commands[name]);
      if (name === "warmBig") await checkPulled(out, warm, BIG_IMAGE, b.images.big.sha256);
      if (name === "warmTiny") await checkPulled(out, warm, TINY_IMAGE, b.images.tiny.sha256);
      if (name === "ls") lsRows = out.stdout.trim().split("\n").length - 1;
      if (name === "help" && !out.stdout.includes("pull"))
        throw new Error("--help printed no command list");
      if (run >= 0) samples[name].push(out.seconds);
    }
  }
  const stats = await b.server.stats();
  const sent = Object.values(stats.bytes).reduce((a, n) => a + n, 0);
  if (sent > 0)
    throw new Error(`warm pulls or ls downloaded ${sent} bytes: ${JSON.stringify(stats.requests)}`);
  await rm(warm, { recursive: true, force: true });
  await rm(lsStore, { recursive: true, force: true });

  const node = { label: "node -e 0", samples: samples.node };
  return [
    judge(LINES.warmBigVsNode, samples.warmBig, { baseline: node }),
    judge(LINES.warmTinyVsNode, samples.warmTiny, { baseline: node }),
    judge(LINES.warmBigVsTiny, samples.warmBig, {
      baseline: { label: "tiny", samples: samples.warmTiny },
    }),
    judge(LINES.ls, samples.ls, {
      baseline: node,
      note: `${lsRows} rows printed; --auto-sync-threshold 0, registry synced once before`,
    }),
    judge(LINES.help, samples.help, { baseline: node }),
  ];
}

/** `sync` of six versioned includes sharing one file, every answer 300 ms late. */
async function delayedSync(b: Bench): Promise<Line[]> {
  const url = b.server.url(b.registries.sync);
  const samples: number[] = [];
  const fetches: number[] = [];
  log(`sync with ${SYNC_DELAY_MS} ms answers, ${SYNC_RUNS} runs`);
  for (let run = 0; run < SYNC_RUNS; run++) {
    const store = await freshDir("sync");
    await b.server.reset();
    await b.server.setDelay(SYNC_DELAY_MS);
    const out = await runTimed(tool(store, "-R", url, "sync"));
    await b.server.setDelay(0);
    const entries = (await readFile(join(store, "images.toml"), "utf8")).match(/^\[\[images\]\]/gm);
    const want = SYNC_INCLUDES * 20 + 10;
    if (entries?.length !== want)
      throw new Error(`images.toml has ${entries?.length ?? 0} entries, expected ${want}`);
    fetches.push(Object.values((await b.server.stats()).requests).reduce((a, n) => a + n, 0));
    samples.push(out.seconds);
    await rm(store, { recursive: true, force: true });
  }
  return [
    judge(LINES.sync, samples, {
      note: `${SYNC_INCLUDES + 2} files; requests per run: ${fetches.join(", ")}; fresh store each run`,
    }),
  ];
}

/** Body bytes the server sent for the big archive since the last reset, in MiB. */
async function sentMiB(b: Bench): Promise<{ mib: number; requests: number }> {
  const stats = await b.server.stats();
  return { mib: (stats.bytes[b.bigPath] ?? 0) / 2 ** 20, requests: stats.requests[b.bigPath] ?? 0 };
}

function transferLine(b: Bench, spec: LineSpec, mib: number, note: string): Line {
  return judge(spec, [mib], {
    baseline: { label: "archive", samples: [b.images.big.size / 2 ** 20] },
    note,
  });
}

/** A pull whose connection the server cuts once at 50%: the tool resumes in the same run. */
async function cutPull(b: Bench): Promise<Line[]> {
  log("pull cut at 50%");
  const store = await syncedStore(b);
  await b.server.reset();
  await b.server.setFault(b.bigPath, "cut", Math.floor(b.images.big.size / 2));
  const out = await runTimed(tool(store, "-N", "pull", BIG_IMAGE));
  await checkPulled(out, store, BIG_IMAGE, b.images.big.sha256);
  const sent = await sentMiB(b);
  await discard(store);
  const note = `${sent.requests} requests, pull took ${out.seconds.toFixed(2)} s`;
  return [transferLine(b, LINES.bytesCut, sent.mib, note)];
}

/** Polls until the server holds the big archive's connection at its `pause` fault. */
async function waitForPause(b: Bench, pulling: { exited: boolean }): Promise<void> {
  for (;;) {
    if ((await b.server.stats()).paused.includes(b.bigPath)) return;
    if (pulling.exited) throw new Error("the pull ended before the server reached 40%");
    await new Promise((done) => setTimeout(done, 50));
  }
}

/** A pull SIGKILLed once the server has sent 40%, then pulled again. */
async function killedPull(b: Bench): Promise<Line[]> {
  log("pull killed at 40%, then pulled again");
  const store = await syncedStore(b);
  await b.server.reset();
  await b.server.setFault(b.bigPath, "pause", Math.floor(b.images.big.size * 0.4));
  let child: ChildProcess | undefined;
  const pulling = { exited: false };
  const first = spawnCommand(tool(store, "-N", "pull", BIG_IMAGE), (c) => (child = c)).finally(
    () => {
      pulling.exited = true;
    },
  );
  await waitForPause(b, pulling);
  // Let the tool write what it received before the server went silent, then kill it.
  await new Promise((done) => setTimeout(done, 500));
  child!.kill("SIGKILL");
  const killed = await first;
  if (killed.signal !== "SIGKILL")
    throw new Error(`the first pull was not killed: ${killed.stderr.trim()}`);
  const out = await runTimed(tool(store, "-N", "pull", BIG_IMAGE));
  await checkPulled(out, store, BIG_IMAGE, b.images.big.sha256);
  const sent = await sentMiB(b);
  await discard(store);
  const note = `${sent.requests} requests, second pull took ${out.seconds.toFixed(2)} s`;
  return [transferLine(b, LINES.bytesKilled, sent.mib, note)];
}

/** Fails early, with a clear message, when the CLI or a baseline tool is missing. */
async function preflight(): Promise<void> {
  for (const argv of [
    [TOOL, "--help"],
    ["curl", "--version"],
    ["sha256sum", "--version"],
    ["tar", "--version"],
  ]) {
    const out = await spawnCommand({ argv }).catch((err: Error) => ({
      status: err.message,
      stderr: "",
    }));
    if (out.status !== 0) {
      throw new Error(`\`${argv.join(" ")}\` does not run (${out.status}): ${out.stderr.trim()}`);
    }
  }
  if (!haveGnuTime())
    throw new Error(`${GNU_TIME} (GNU time) is needed for peak RSS: apt-get install time`);
}

async function main(): Promise<number> {
  await preflight();
  const started = Date.now();
  const images = await ensureImages(WORK, log);
  await rm(RUNS_DIR, { recursive: true, force: true });
  await mkdir(RUNS_DIR, { recursive: true });
  const server = await startServer(WORK);
  const lines: Line[] = [];
  try {
    const b: Bench = {
      server,
      images,
      registries: await writeRegistries(WORK, images, server.url),
      bigPath: archiveServerPath(WORK, images.big.path),
    };
    lines.push(
      ...(await section([LINES.coldVsB, LINES.coldVsC, LINES.coldRss], () => coldPulls(b))),
      ...(await section(
        [LINES.warmBigVsNode, LINES.warmTinyVsNode, LINES.warmBigVsTiny, LINES.ls, LINES.help],
        () => smallCommands(b),
      )),
      ...(await section([LINES.sync], () => delayedSync(b))),
      ...(await section([LINES.bytesCut], () => cutPull(b))),
      ...(await section([LINES.bytesKilled], () => killedPull(b))),
    );
  } finally {
    await server.stop();
    await rm(RUNS_DIR, { recursive: true, force: true });
    await removeCommandCwd();
  }
  const big = images.big;
  process.stdout.write(
    `\naxvisor-image benchmark: big image ${(big.manifest.bytes / 2 ** 20).toFixed(1)} MiB in ` +
      `${big.manifest.files} files, archive ${(big.size / 2 ** 20).toFixed(1)} MiB; ` +
      `medians of ${COLD_RUNS} (cold) / ${SMALL_RUNS} (small) / ${SYNC_RUNS} (sync) runs\n\n` +
      formatReport(lines),
  );
  const resultsPath = join(WORK, "results.json");
  await writeResults(resultsPath, {
    date: new Date().toISOString(),
    durationSeconds: (Date.now() - started) / 1000,
    machine: { node: process.version, cpus: availableParallelism(), platform: process.platform },
    method: {
      timer: "process.hrtime around spawn (hyperfine not used)",
      peakRss: `${GNU_TIME} -f %M`,
      runs: { cold: COLD_RUNS, small: SMALL_RUNS, sync: SYNC_RUNS },
    },
    images,
    lines,
  });
  process.stdout.write(`\nresults: ${resultsPath}\n`);
  return lines.every((l) => l.pass) ? 0 : 1;
}

process.exitCode = await main().catch((err: unknown) => {
  log(err instanceof Error ? err.message : String(err));
  return 1;
});
