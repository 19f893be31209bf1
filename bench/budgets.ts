/** Every line of the benchmark and its budget (from the issue). */
import { LS_ENTRIES, SYNC_INCLUDES } from "./registries.js";
import type { LineSpec } from "./report.js";

/** Server delay of every answer during the sync line (ms). */
export const SYNC_DELAY_MS = 300;

/** Body bytes the server may send for one pull, relative to the archive size. */
const TRANSFER_BUDGET = { ratio: 1.2, of: "archive" };

/** The benchmark's lines, in report order. */
export const LINES = {
  coldVsB: {
    id: "cold_pull_vs_B",
    label: "cold pull vs B",
    unit: "s",
    budget: { ratio: 0.8, of: "B" },
  },
  coldVsC: {
    id: "cold_pull_vs_C",
    label: "cold pull vs C",
    unit: "s",
    budget: { ratio: 1.25, of: "C" },
  },
  coldRss: {
    id: "cold_pull_peak_rss",
    label: "peak RSS, cold pull",
    unit: "MiB",
    budget: { max: 160, worst: true },
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
    budget: { max: 1.3 },
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
