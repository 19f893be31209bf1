/** Every line of the benchmark and its budget (issue 12, and the earlier ones it keeps). */
import { LS_ENTRIES, SYNC_INCLUDES } from "./registries.js";
import type { LineSpec } from "./report.js";

/** Server delay of every answer during the sync line (ms). */
export const SYNC_DELAY_MS = 300;

/** Body bytes the server may send for one pull, relative to the archive size. */
const TRANSFER_BUDGET = { ratio: 1.2, of: "archive" };
/** Peak RSS of a pull, xz or zstd child included. */
const RSS_BUDGET = { max: 160, worst: true };
/** A pull against the C tools' stream it wraps (`curl | xz -dc | tar -x`). */
const STREAM_BUDGET = (of: string) => ({ ratio: 1.1, of });
/** A pull against the C tools one after another (`curl -o`, `sha256sum`, `tar -x`). */
const SEQUENTIAL_BUDGET = { ratio: 0.7, of: "B" };
/** Time per GiB of a 2 GiB image against that of the 512 MiB one. */
const LINEAR_BUDGET = { ratio: 1.1, of: "512 MiB" };

/** The benchmark's lines, in report order. */
export const LINES = {
  gzipVsFloor: {
    id: "gzip_cold_pull_vs_floor",
    label: "gzip cold pull vs gunzip floor",
    unit: "s",
    budget: { ratio: 1.25, of: "F" },
  },
  gzipVsB: {
    id: "gzip_cold_pull_vs_B",
    label: "gzip cold pull vs B",
    unit: "s",
    budget: { ratio: 0.6, of: "B" },
  },
  gzipVsC: {
    id: "gzip_cold_pull_vs_C",
    label: "gzip cold pull vs C",
    unit: "s",
    budget: { ratio: 1.25, of: "C" },
  },
  gzipRss: {
    id: "gzip_cold_pull_peak_rss",
    label: "peak RSS, gzip cold pull",
    unit: "MiB",
    budget: RSS_BUDGET,
  },
  xzVsStream: {
    id: "xz_img_cold_pull_vs_S",
    label: "xz .img cold pull vs S",
    unit: "s",
    budget: STREAM_BUDGET("S"),
  },
  xzVsB: {
    id: "xz_img_cold_pull_vs_B",
    label: "xz .img cold pull vs B",
    unit: "s",
    budget: SEQUENTIAL_BUDGET,
  },
  xzRss: {
    id: "xz_img_cold_pull_peak_rss",
    label: "peak RSS (tree), xz .img pull",
    unit: "MiB",
    budget: RSS_BUDGET,
  },
  bundleXzVsStream: {
    id: "xz_bundle_cold_pull_vs_S",
    label: "xz bundle cold pull vs S",
    unit: "s",
    budget: STREAM_BUDGET("S"),
  },
  bundleXzVsB: {
    id: "xz_bundle_cold_pull_vs_B",
    label: "xz bundle cold pull vs B",
    unit: "s",
    budget: SEQUENTIAL_BUDGET,
  },
  xz2gVsStream: {
    id: "xz_2g_cold_pull_vs_S",
    label: "2 GiB .img.tar.xz pull vs S",
    unit: "s",
    budget: STREAM_BUDGET("S"),
  },
  xz2gVsB: {
    id: "xz_2g_cold_pull_vs_B",
    label: "2 GiB .img.tar.xz pull vs B",
    unit: "s",
    budget: SEQUENTIAL_BUDGET,
  },
  xz2gLinear: {
    id: "xz_2g_linear",
    label: "2 GiB .img.tar.xz, time per GiB",
    unit: "s/GiB",
    budget: LINEAR_BUDGET,
  },
  zst2gVsStream: {
    id: "zst_2g_cold_pull_vs_S",
    label: "2 GiB .img.tar.zst pull vs S",
    unit: "s",
    budget: STREAM_BUDGET("S"),
  },
  zst2gVsB: {
    id: "zst_2g_cold_pull_vs_B",
    label: "2 GiB .img.tar.zst pull vs B",
    unit: "s",
    budget: SEQUENTIAL_BUDGET,
  },
  zst2gLinear: {
    id: "zst_2g_linear",
    label: "2 GiB .img.tar.zst, time per GiB",
    unit: "s/GiB",
    budget: LINEAR_BUDGET,
  },
  rss2g: {
    id: "2g_cold_pull_peak_rss",
    label: "peak RSS (tree), 2 GiB pulls",
    unit: "MiB",
    budget: RSS_BUDGET,
  },
  concurrent: {
    id: "three_at_once",
    label: "3 images at once vs one after another",
    unit: "s",
    budget: { ratio: 0.8, of: "-j 1" },
  },
  warmBigVsNode: {
    id: "warm_pull_big_vs_node",
    label: "warm pull, big image",
    unit: "s",
    budget: { ratio: 3, of: "node" },
  },
  warmTinyVsNode: {
    id: "warm_pull_tiny_vs_node",
    label: "warm pull, tiny image",
    unit: "s",
    budget: { ratio: 3, of: "node" },
  },
  warmBigVsTiny: {
    id: "warm_pull_big_vs_tiny",
    label: "warm pull, big vs tiny",
    unit: "s",
    budget: { ratio: 1.1, of: "tiny" },
  },
  ls: {
    id: "ls_20k_vs_node",
    label: `ls, ${LS_ENTRIES.toLocaleString("en")} entries`,
    unit: "s",
    budget: { ratio: 4, of: "node" },
  },
  help: { id: "help_vs_node", label: "--help", unit: "s", budget: { ratio: 2.5, of: "node" } },
  sync: {
    id: "sync_delayed",
    label: `sync, ${SYNC_INCLUDES} includes + shared file, ${SYNC_DELAY_MS} ms answers`,
    unit: "s",
    budget: { max: 1.2 },
  },
  bytesCut: {
    id: "bytes_cut_at_50",
    label: "bytes sent, connection cut at 50%",
    unit: "MiB",
    budget: TRANSFER_BUDGET,
  },
  bytesKilled: {
    id: "bytes_killed_at_40",
    label: "bytes sent, SIGKILL at 40% + pull again",
    unit: "MiB",
    budget: TRANSFER_BUDGET,
  },
} satisfies Record<string, LineSpec>;
