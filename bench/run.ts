/**
 * `npm run bench`: the performance figures of `bin/axvisor-image` against the C tools (curl,
 * sha256sum, GNU tar, xz, zstd), Node's own gunzip and `node -e 0`, each with its budget. Prints a
 * table, writes the same figures to `bench/.work/results.json`, and exits 1 when a line fails.
 * `AXVISOR_BENCH_QUICK=1` runs fewer rounds and leaves out the 2 GiB cases; see bench/README.md.
 */
import { availableParallelism } from "node:os";
import { lstat, mkdir, mkdtemp, readFile, rm, symlink } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { ChildProcess } from "node:child_process";
import { benchCacheDir } from "./cache.js";
import { ensureImages, scanTree, sha256File, type GeneratedArchive } from "./image.js";
import {
  GNU_TIME,
  haveGnuTime,
  median,
  removeCommandCwd,
  runTimed,
  spawnCommand,
  type CommandSpec,
  type RunOutcome,
} from "./measure.js";
import {
  BIG_IMAGE,
  CACHE_LINK,
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
import { ensureRootfs, type RootfsArchive } from "./rootfs.js";
import { startServer, type BenchServer } from "./server-control.js";

const BENCH_DIR = dirname(fileURLToPath(import.meta.url));
const WORK = join(BENCH_DIR, ".work");
const RUNS_DIR = join(WORK, "runs");
/** The CLI measured: this checkout's, or `AXVISOR_BENCH_TOOL` (another build, for before/after). */
const TOOL = process.env["AXVISOR_BENCH_TOOL"] || join(dirname(BENCH_DIR), "bin", "axvisor-image");
const MARKER = ".archive.sha256";
const GIB = 2 ** 30;

/** `AXVISOR_BENCH_QUICK=1`: fewer rounds, no 2 GiB cases (unless `AXVISOR_BENCH_2G=1`). */
const QUICK = process.env["AXVISOR_BENCH_QUICK"] === "1";
/** Whether the 2 GiB cases run: always in the full mode, unless `AXVISOR_BENCH_2G=0`. */
const WITH_2G = (process.env["AXVISOR_BENCH_2G"] ?? (QUICK ? "0" : "1")) === "1";
/** `AXVISOR_BENCH_ONLY=gzip,xz,...`: run only these sections (see SECTIONS). */
const ONLY = process.env["AXVISOR_BENCH_ONLY"]?.split(",").filter(Boolean);

/** Runs of each cold pull and its baselines. */
const COLD_RUNS = QUICK ? 3 : 5;
/** Runs of each 2 GiB pull and its baselines. */
const COLD_RUNS_2G = 3;
/** Runs of each small command (warm pulls, ls, --help, node -e 0). */
const SMALL_RUNS = QUICK ? 8 : 20;
/** Runs of the delayed sync. */
const SYNC_RUNS = QUICK ? 3 : 5;

/** Image names of the benchmark registry beyond {@link BIG_IMAGE} and {@link TINY_IMAGE}. */
const IMAGES = {
  bundleXz: "bench_guest_xz",
  rootfs: "bench_rootfs",
  rootfsZst: "bench_rootfs_zst",
  rootfs2g: "bench_rootfs_2g",
  rootfs2gZst: "bench_rootfs_2g_zst",
};

const log = (line: string) => process.stderr.write(`bench: ${line}\n`);

/** Everything the sections share. */
interface Bench {
  server: BenchServer;
  registries: RegistryPaths;
  cacheDir: string;
  big: GeneratedArchive;
  bigXz: GeneratedArchive;
  tiny: GeneratedArchive;
  rootfs: { xz: RootfsArchive; zst: RootfsArchive };
  rootfs2g?: { xz: RootfsArchive; zst: RootfsArchive };
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

/** The URL of an archive of the cache. */
const urlOf = (b: Bench, archive: GeneratedArchive) =>
  b.server.url(archiveServerPath(b.cacheDir, archive.path));

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

/**
 * Fails unless `dir` holds the archive's image: the right size and, with `exact`, the right bytes
 * stored with holes (no more than the data blocks + 1%). Returns the bytes allocated on disk.
 */
async function checkImage(
  dir: string,
  archive: RootfsArchive,
  what: string,
  exact: boolean,
): Promise<number> {
  const path = join(dir, archive.image.name);
  const st = await lstat(path);
  if (st.size !== archive.image.size) {
    throw new Error(`${what}: ${path} has ${st.size} bytes, expected ${archive.image.size}`);
  }
  const allocated = st.blocks * 512;
  if (!exact) return allocated;
  if (allocated > archive.image.dataBytes * 1.01 + 2 ** 20) {
    throw new Error(
      `${what}: ${path} takes ${allocated} bytes on disk: not stored with holes ` +
        `(data blocks: ${archive.image.dataBytes} bytes)`,
    );
  }
  const sha256 = await sha256File(path);
  if (sha256 !== archive.image.sha256) {
    throw new Error(`${what}: ${path} differs from the image (sha256 ${sha256})`);
  }
  return allocated;
}

/** Fails unless the tool pulled `image` into `store`: stdout names the tree, marker matches. */
async function checkPulled(
  out: RunOutcome,
  store: string,
  images: string[],
  sha256s: string[],
): Promise<void> {
  const trees = images.map((image) => join(store, image));
  if (out.stdout.trim() !== trees.join("\n"))
    throw new Error(`pull printed "${out.stdout.trim()}", expected ${trees.join(" ")}`);
  for (const [i, tree] of trees.entries()) {
    const marker = (await readFile(join(tree, MARKER), "utf8")).trim();
    if (marker !== sha256s[i])
      throw new Error(`${tree}/${MARKER} holds "${marker}", expected ${sha256s[i]}`);
  }
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

/** One contender of a cold case: runs once in the fresh directory `dir`, checked. */
type Contender = (dir: string) => Promise<RunOutcome>;
/** Checks what a contender left in `dir`; throws when it is wrong. */
type Check = (dir: string) => Promise<unknown>;

/**
 * Runs every contender `runs` times, interleaved (the order rotating every round), each in a fresh
 * directory deleted (and flushed) afterwards; returns every outcome by contender.
 */
async function interleave<K extends string>(
  what: string,
  runs: number,
  contenders: Record<K, Contender>,
): Promise<Record<K, RunOutcome[]>> {
  const names = Object.keys(contenders) as K[];
  const outcomes = Object.fromEntries(names.map((n) => [n, [] as RunOutcome[]])) as Record<
    K,
    RunOutcome[]
  >;
  for (let run = 0; run < runs; run++) {
    log(`${what}, run ${run + 1}/${runs}`);
    for (let i = 0; i < names.length; i++) {
      const name = names[(run + i) % names.length]!;
      const dir = await freshDir(name);
      try {
        outcomes[name].push(await contenders[name](dir));
      } finally {
        await discard(dir);
      }
    }
  }
  return outcomes;
}

const seconds = (outcomes: RunOutcome[]) => outcomes.map((o) => o.seconds);
const cpuNote = (outcomes: RunOutcome[]) =>
  `CPU ${median(outcomes.map((o) => o.cpuSeconds ?? 0)).toFixed(2)} s`;

/** The tool's cold pull of `image` into a synced store in `dir` (with RSS), checked. */
function toolPull(b: Bench, image: string, archive: GeneratedArchive, check: Check): Contender {
  return async (dir) => {
    const store = join(dir, "store");
    await runTimed(tool(store, "-R", b.server.url(b.registries.bench), "sync"));
    const out = await runTimed(tool(store, "-N", "pull", image), { rss: true });
    await checkPulled(out, store, [image], [archive.sha256]);
    await check(join(store, image));
    return out;
  };
}

/** `sh -c script dir url`, timed (with RSS and CPU), checked by `check(dir)`. */
function shell(script: string, url: string, check: Check): Contender {
  return async (dir) => {
    const out = await runTimed({ argv: ["sh", "-c", script, dir, url] }, { rss: true });
    await check(dir);
    return out;
  };
}

/** B: the C tools one after another; `tarFlags` decompress (`-z`, `-J`, `--zstd`). */
const sequentialScript = (tarFlags: string) =>
  `curl -sf -o "$0/f" "$1" && sha256sum "$0/f" && mkdir "$0/x" && tar ${tarFlags} -xf "$0/f" -C "$0/x"`;

/** Fails unless B's sha256sum printed the archive's digest. */
function checkDigestPrinted(out: RunOutcome, archive: GeneratedArchive): RunOutcome {
  if (!out.stdout.startsWith(archive.sha256))
    throw new Error(`B: sha256sum printed ${out.stdout.trim()}`);
  return out;
}

/** Node start-up + `zlib.createGunzip()` to nowhere, reading the archive file. */
const GUNZIP_FLOOR = [
  'const { createReadStream } = require("node:fs");',
  'const { Writable, pipeline } = require("node:stream");',
  'const { createGunzip } = require("node:zlib");',
  "const nowhere = new Writable({ write: (_c, _e, done) => done() });",
  "pipeline(createReadStream(process.argv[1]), createGunzip(), nowhere, (err) => {",
  "  if (err) throw err;",
  "});",
].join("\n");

/** The `.tar.gz` bundle: against Node's gunzip floor, B (curl, sha256sum, tar) and C (curl | tar). */
async function gzipPulls(b: Bench): Promise<Line[]> {
  const url = urlOf(b, b.big);
  const out = await interleave("gzip cold pull", COLD_RUNS, {
    tool: toolPull(b, BIG_IMAGE, b.big, (d) => checkTree(d, b.big, "tool")),
    F: async () =>
      runTimed({ argv: [process.execPath, "-e", GUNZIP_FLOOR, b.big.path] }, { rss: true }),
    B: async (dir) => {
      const check = (d: string) => checkTree(join(d, "x"), b.big, "B");
      return checkDigestPrinted(await shell(sequentialScript("-z"), url, check)(dir), b.big);
    },
    C: shell('curl -sf "$1" | tar -xz -C "$0"', url, (d) => checkTree(d, b.big, "C")),
  });
  const t = seconds(out.tool);
  return [
    judge(LINES.gzipVsFloor, t, {
      baseline: { label: "F", samples: seconds(out.F) },
      note: `F = node -e: createReadStream(archive) -> zlib.createGunzip() -> nowhere; tool ${cpuNote(out.tool)}`,
    }),
    judge(LINES.gzipVsB, t, {
      baseline: { label: "B", samples: seconds(out.B) },
      note: `B = curl -s -o f URL && sha256sum f && tar -xzf f -C dir (${cpuNote(out.B)})`,
    }),
    judge(LINES.gzipVsC, t, {
      baseline: { label: "C", samples: seconds(out.C) },
      note: `C = curl -s URL | tar -xz -C dir (${cpuNote(out.C)})`,
    }),
    judge(
      LINES.gzipRss,
      out.tool.map((o) => o.peakTreeRssMiB!),
      {
        note:
          `maximum over ${COLD_RUNS} runs of the tree's sampled RSS; ${GNU_TIME} %M: ` +
          `${Math.max(...out.tool.map((o) => o.peakRssMiB!)).toFixed(1)} MiB; C (curl | tar) ` +
          `peaked at ${Math.max(...out.C.map((o) => o.peakTreeRssMiB!)).toFixed(1)} MiB`,
      },
    ),
  ];
}

/** The streaming floor S and the sequential C tools B for an xz or zstd archive. */
function baselines(
  b: Bench,
  archive: GeneratedArchive,
  format: "xz" | "zst",
  check: (dir: string, what: string) => Promise<unknown>,
): { S: Contender; B: Contender; stream: string; sequential: string } {
  const url = urlOf(b, archive);
  const decompress = format === "xz" ? "xz -dc -T0" : "zstd -dcq";
  const tarFlags = format === "xz" ? "-J" : "--zstd";
  const stream = `curl -sf "$1" | ${decompress} | tar -x -C "$0"`;
  const sequential = sequentialScript(tarFlags);
  return {
    stream: `curl -s URL | ${decompress} | tar -x`,
    sequential: `curl -s -o f URL && sha256sum f && tar ${tarFlags} -xf f`,
    S: shell(stream, url, (d) => check(d, "S")),
    B: async (dir) => {
      const run = await shell(sequential, url, (d) => check(join(d, "x"), "B"))(dir);
      return checkDigestPrinted(run, archive);
    },
  };
}

/** Cold pulls of an xz or zstd archive against S and B; the tool's outcomes are returned too. */
async function compressedCase(
  b: Bench,
  what: string,
  runs: number,
  image: string,
  archive: GeneratedArchive,
  format: "xz" | "zst",
  check: (dir: string, what: string, exact: boolean) => Promise<unknown>,
  specs: { vsStream: LineSpec; vsB: LineSpec },
): Promise<{ lines: Line[]; tool: RunOutcome[]; notes: string[] }> {
  const base = baselines(b, archive, format, (d, w) => check(d, w, false));
  const notes: string[] = [];
  const out = await interleave(what, runs, {
    tool: toolPull(b, image, archive, async (d) => {
      notes.push(String(await check(d, "tool", true)));
    }),
    S: base.S,
    B: base.B,
  });
  const t = seconds(out.tool);
  return {
    tool: out.tool,
    notes,
    lines: [
      judge(specs.vsStream, t, {
        baseline: { label: "S", samples: seconds(out.S) },
        note: `S = ${base.stream} (${cpuNote(out.S)}); tool ${cpuNote(out.tool)}`,
      }),
      judge(specs.vsB, t, {
        baseline: { label: "B", samples: seconds(out.B) },
        note: `B = ${base.sequential} (${cpuNote(out.B)})`,
      }),
    ],
  };
}

/** RSS line of some pulls: the tree's sampled peak judged, GNU time's %M noted. */
function rssLine(spec: LineSpec, outcomes: RunOutcome[], extra = ""): Line {
  return judge(
    spec,
    outcomes.map((o) => o.peakTreeRssMiB!),
    {
      note:
        `maximum over ${outcomes.length} runs of the summed RSS of the pull and its children ` +
        `(sampled every 20 ms); ${GNU_TIME} %M (largest single process): ` +
        `${Math.max(...outcomes.map((o) => o.peakRssMiB!)).toFixed(1)} MiB${extra}`,
    },
  );
}

const imageCheck =
  (archive: RootfsArchive) =>
  async (dir: string, what: string, exact: boolean): Promise<string> => {
    const allocated = await checkImage(dir, archive, what, exact);
    return `${(allocated / 2 ** 20).toFixed(0)} MiB on disk`;
  };

/** The tgosimages-like `.img.tar.xz` (512 MiB ext4 image). */
async function xzImagePulls(b: Bench): Promise<Line[]> {
  const archive = b.rootfs.xz;
  const r = await compressedCase(
    b,
    "xz .img cold pull",
    COLD_RUNS,
    IMAGES.rootfs,
    archive,
    "xz",
    imageCheck(archive),
    { vsStream: LINES.xzVsStream, vsB: LINES.xzVsB },
  );
  const size = `image ${archive.image.size / 2 ** 20} MiB, archive ${(archive.size / 2 ** 20).toFixed(1)} MiB`;
  return [...r.lines, rssLine(LINES.xzRss, r.tool, `; ${size}, tool's copy: ${r.notes[0]}`)];
}

/** The `.tar.xz` bundle (same tree as the `.tar.gz`). */
async function xzBundlePulls(b: Bench): Promise<Line[]> {
  const r = await compressedCase(
    b,
    "xz bundle cold pull",
    COLD_RUNS,
    IMAGES.bundleXz,
    b.bigXz,
    "xz",
    (dir, what) => checkTree(dir, b.bigXz, what),
    { vsStream: LINES.bundleXzVsStream, vsB: LINES.bundleXzVsB },
  );
  return r.lines;
}

/** Time per GiB of image of `big` pulls against `small` ones. */
function linearLine(
  spec: LineSpec,
  big: RunOutcome[],
  bigSize: number,
  small: number[],
  smallSize: number,
): Line {
  return judge(
    spec,
    seconds(big).map((s) => s / (bigSize / GIB)),
    {
      baseline: { label: "512 MiB", samples: small.map((s) => s / (smallSize / GIB)) },
      note: `median s per GiB of image: ${(bigSize / GIB).toFixed(0)} GiB pulls against 512 MiB ones`,
    },
  );
}

/** Tool-only cold pulls of a 512 MiB `.img` archive, for the slope of the 2 GiB lines. */
async function smallImagePulls(b: Bench, image: string, archive: RootfsArchive): Promise<number[]> {
  const out = await interleave(`512 MiB ${image} pull`, COLD_RUNS_2G, {
    tool: toolPull(b, image, archive, (d) => checkImage(d, archive, "tool", true)),
  });
  return seconds(out.tool);
}

/** The 2 GiB image in `.tar.xz` and `.tar.zst`: S, B, linear in size, RSS, identical with holes. */
async function bigImagePulls(b: Bench): Promise<Line[]> {
  const set = b.rootfs2g!;
  const xz = await compressedCase(
    b,
    "2 GiB .img.tar.xz pull",
    COLD_RUNS_2G,
    IMAGES.rootfs2g,
    set.xz,
    "xz",
    imageCheck(set.xz),
    { vsStream: LINES.xz2gVsStream, vsB: LINES.xz2gVsB },
  );
  const zst = await compressedCase(
    b,
    "2 GiB .img.tar.zst pull",
    COLD_RUNS_2G,
    IMAGES.rootfs2gZst,
    set.zst,
    "zst",
    imageCheck(set.zst),
    { vsStream: LINES.zst2gVsStream, vsB: LINES.zst2gVsB },
  );
  const xz512 = await smallImagePulls(b, IMAGES.rootfs, b.rootfs.xz);
  const zst512 = await smallImagePulls(b, IMAGES.rootfsZst, b.rootfs.zst);
  const size = set.xz.image.size;
  const smallSize = b.rootfs.xz.image.size;
  return [
    ...xz.lines,
    linearLine(LINES.xz2gLinear, xz.tool, size, xz512, smallSize),
    ...zst.lines,
    linearLine(LINES.zst2gLinear, zst.tool, size, zst512, smallSize),
    rssLine(
      LINES.rss2g,
      [...xz.tool, ...zst.tool],
      `; stored copies: xz ${xz.notes[0]}, zst ${zst.notes[0]} (data: ` +
        `${(set.xz.image.dataBytes / 2 ** 20).toFixed(0)} MiB, image ${size / 2 ** 20} MiB)`,
    ),
  ];
}

/** Three images in one `pull` (3 at once, the default) against `pull -j 1` (one after another). */
async function threeAtOnce(b: Bench): Promise<Line[]> {
  const images = [BIG_IMAGE, IMAGES.bundleXz, IMAGES.rootfs];
  const sha256s = [b.big.sha256, b.bigXz.sha256, b.rootfs.xz.sha256];
  const pullAll =
    (jobs: string): Contender =>
    async (dir) => {
      const store = join(dir, "store");
      await runTimed(tool(store, "-R", b.server.url(b.registries.bench), "sync"));
      const out = await runTimed(tool(store, "-N", "pull", "-j", jobs, ...images), { rss: true });
      await checkPulled(out, store, images, sha256s);
      return out;
    };
  const out = await interleave("3 images", COLD_RUNS, { at: pullAll("3"), seq: pullAll("1") });
  return [
    judge(LINES.concurrent, seconds(out.at), {
      baseline: { label: "-j 1", samples: seconds(out.seq) },
      note:
        `pull ${images.join(" ")} (gz bundle, xz bundle, xz .img) with -j 3 vs -j 1; ` +
        `${cpuNote(out.at)} vs ${cpuNote(out.seq)} on ${availableParallelism()} cores; ` +
        `peak tree RSS at once ${Math.max(...out.at.map((o) => o.peakTreeRssMiB!)).toFixed(0)} MiB`,
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
      if (name === "warmBig") await checkPulled(out, warm, [BIG_IMAGE], [b.big.sha256]);
      if (name === "warmTiny") await checkPulled(out, warm, [TINY_IMAGE], [b.tiny.sha256]);
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
  const floor = 3 * SYNC_DELAY_MS;
  return [
    judge(LINES.sync, samples, {
      note:
        `${SYNC_INCLUDES + 2} files in 3 levels (${floor} ms of answers at the least); requests ` +
        `per run: ${fetches.join(", ")}; fresh store each run`,
    }),
  ];
}

/** Body bytes the server sent for the big archive since the last reset, in MiB. */
async function sentMiB(b: Bench): Promise<{ mib: number; requests: number }> {
  const stats = await b.server.stats();
  const path = archiveServerPath(b.cacheDir, b.big.path);
  return { mib: (stats.bytes[path] ?? 0) / 2 ** 20, requests: stats.requests[path] ?? 0 };
}

function transferLine(b: Bench, spec: LineSpec, mib: number, note: string): Line {
  return judge(spec, [mib], {
    baseline: { label: "archive", samples: [b.big.size / 2 ** 20] },
    note,
  });
}

/** A pull whose connection the server cuts once at 50%: the tool resumes in the same run. */
async function cutPull(b: Bench): Promise<Line[]> {
  log("pull cut at 50%");
  const store = await syncedStore(b);
  await b.server.reset();
  await b.server.setFault(
    archiveServerPath(b.cacheDir, b.big.path),
    "cut",
    Math.floor(b.big.size / 2),
  );
  const out = await runTimed(tool(store, "-N", "pull", BIG_IMAGE));
  await checkPulled(out, store, [BIG_IMAGE], [b.big.sha256]);
  const sent = await sentMiB(b);
  await discard(store);
  const note = `${sent.requests} requests, pull took ${out.seconds.toFixed(2)} s`;
  return [transferLine(b, LINES.bytesCut, sent.mib, note)];
}

/** Polls until the server holds the big archive's connection at its `pause` fault. */
async function waitForPause(b: Bench, pulling: { exited: boolean }): Promise<void> {
  const path = archiveServerPath(b.cacheDir, b.big.path);
  for (;;) {
    if ((await b.server.stats()).paused.includes(path)) return;
    if (pulling.exited) throw new Error("the pull ended before the server reached 40%");
    await new Promise((done) => setTimeout(done, 50));
  }
}

/** A pull SIGKILLed once the server has sent 40%, then pulled again. */
async function killedPull(b: Bench): Promise<Line[]> {
  log("pull killed at 40%, then pulled again");
  const store = await syncedStore(b);
  await b.server.reset();
  await b.server.setFault(
    archiveServerPath(b.cacheDir, b.big.path),
    "pause",
    Math.floor(b.big.size * 0.4),
  );
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
  await checkPulled(out, store, [BIG_IMAGE], [b.big.sha256]);
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
    ["xz", "--version"],
    ["zstd", "--version"],
    ["mke2fs", "-V"],
    ["debugfs", "-V"],
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

/** The sections, by the name `AXVISOR_BENCH_ONLY` selects them with. */
const SECTIONS: Record<string, { lines: LineSpec[]; run: (b: Bench) => Promise<Line[]> }> = {
  gzip: {
    lines: [LINES.gzipVsFloor, LINES.gzipVsB, LINES.gzipVsC, LINES.gzipRss],
    run: gzipPulls,
  },
  xz: { lines: [LINES.xzVsStream, LINES.xzVsB, LINES.xzRss], run: xzImagePulls },
  "xz-bundle": { lines: [LINES.bundleXzVsStream, LINES.bundleXzVsB], run: xzBundlePulls },
  "2g": {
    lines: [
      LINES.xz2gVsStream,
      LINES.xz2gVsB,
      LINES.xz2gLinear,
      LINES.zst2gVsStream,
      LINES.zst2gVsB,
      LINES.zst2gLinear,
      LINES.rss2g,
    ],
    run: bigImagePulls,
  },
  concurrent: { lines: [LINES.concurrent], run: threeAtOnce },
  small: {
    lines: [LINES.warmBigVsNode, LINES.warmTinyVsNode, LINES.warmBigVsTiny, LINES.ls, LINES.help],
    run: smallCommands,
  },
  sync: { lines: [LINES.sync], run: delayedSync },
  cut: { lines: [LINES.bytesCut], run: cutPull },
  kill: { lines: [LINES.bytesKilled], run: killedPull },
};

function wanted(name: string): boolean {
  if (name === "2g" && !WITH_2G && !ONLY?.includes("2g")) return false;
  return ONLY === undefined || ONLY.includes(name);
}

async function main(): Promise<number> {
  for (const name of ONLY ?? []) {
    if (!(name in SECTIONS)) throw new Error(`AXVISOR_BENCH_ONLY: no section ${name}`);
  }
  await preflight();
  const started = Date.now();
  const cacheDir = benchCacheDir();
  const bundles = await ensureImages(cacheDir, log);
  const rootfs = await ensureRootfs(cacheDir, "512m", 512 * 2 ** 20, log);
  const rootfs2g = wanted("2g") ? await ensureRootfs(cacheDir, "2g", 2 * GIB, log) : undefined;
  await rm(RUNS_DIR, { recursive: true, force: true });
  await mkdir(RUNS_DIR, { recursive: true });
  await rm(join(WORK, CACHE_LINK), { force: true });
  await symlink(cacheDir, join(WORK, CACHE_LINK));
  const server = await startServer(WORK);
  const lines: Line[] = [];
  try {
    const registryImages: Record<string, GeneratedArchive> = {
      [BIG_IMAGE]: bundles.big,
      [TINY_IMAGE]: bundles.tiny,
      [IMAGES.bundleXz]: bundles.bigXz,
      [IMAGES.rootfs]: rootfs.xz,
      [IMAGES.rootfsZst]: rootfs.zst,
      ...(rootfs2g ? { [IMAGES.rootfs2g]: rootfs2g.xz, [IMAGES.rootfs2gZst]: rootfs2g.zst } : {}),
    };
    const b: Bench = {
      server,
      cacheDir,
      registries: await writeRegistries(WORK, cacheDir, registryImages, server.url),
      ...bundles,
      rootfs,
      rootfs2g,
    };
    for (const [name, s] of Object.entries(SECTIONS)) {
      if (wanted(name)) lines.push(...(await section(s.lines, () => s.run(b))));
    }
  } finally {
    await server.stop();
    await rm(RUNS_DIR, { recursive: true, force: true });
    await removeCommandCwd();
  }
  process.stdout.write(
    `\naxvisor-image benchmark${QUICK ? " (quick)" : ""}: gzip bundle ` +
      `${(bundles.big.size / 2 ** 20).toFixed(1)} MiB (${(bundles.big.manifest.bytes / 2 ** 20).toFixed(0)} MiB tree), ` +
      `xz .img ${(rootfs.xz.size / 2 ** 20).toFixed(1)} MiB (${rootfs.xz.image.size / 2 ** 20} MiB ext4); ` +
      `medians of ${COLD_RUNS} (cold) / ${COLD_RUNS_2G} (2 GiB) / ${SMALL_RUNS} (small) / ` +
      `${SYNC_RUNS} (sync) runs\n\n` +
      formatReport(lines),
  );
  const resultsPath = join(WORK, "results.json");
  await writeResults(resultsPath, {
    date: new Date().toISOString(),
    durationSeconds: (Date.now() - started) / 1000,
    machine: { node: process.version, cpus: availableParallelism(), platform: process.platform },
    method: {
      timer: "process.hrtime around spawn (hyperfine not used)",
      peakRss: `sampled sum over the process tree; ${GNU_TIME} -f %M noted`,
      runs: { cold: COLD_RUNS, cold2g: COLD_RUNS_2G, small: SMALL_RUNS, sync: SYNC_RUNS },
      quick: QUICK,
    },
    archives: { ...bundles, rootfs, rootfs2g },
    lines,
  });
  process.stdout.write(`\nresults: ${resultsPath}\n`);
  return lines.every((l) => l.pass) ? 0 : 1;
}

process.exitCode = await main().catch((err: unknown) => {
  log(err instanceof Error ? err.message : String(err));
  return 1;
});
