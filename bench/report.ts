/** Benchmark lines: how each figure is judged against its budget, printed as a table, and saved. */
import { mkdir, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import { median } from "./measure.js";

/** One line of the report. */
export interface Line {
  /** Stable key in results.json. */
  id: string;
  /** What is measured, for people. */
  label: string;
  unit: "s" | "MiB" | "s/GiB";
  /** The tool's figure (median of the samples, or their maximum for peak RSS). */
  value?: number;
  /** What the figure is compared with, when the budget is a ratio. */
  baseline?: { label: string; value: number };
  /** value / baseline. */
  ratio?: number;
  /** The budget, for people: `<= 0.80x B`, `<= 160 MiB`. */
  budget: string;
  pass: boolean;
  /** Every sample of the tool's figure. */
  samples: number[];
  /** Every sample of the baseline. */
  baselineSamples?: number[];
  /** Context: how it was measured, side observations. */
  note?: string;
  /** Why the line has no figure (the tool failed, ...). */
  error?: string;
}

/** How a line is judged: a ratio to a baseline's median, or an absolute maximum. */
export type Budget = { ratio: number; of: string } | { max: number; worst?: boolean };

/** What a line measures and its budget. */
export interface LineSpec {
  id: string;
  label: string;
  unit: Line["unit"];
  budget: Budget;
}

/** The budget, for people. */
export function budgetText(spec: LineSpec): string {
  const b = spec.budget;
  return "ratio" in b ? `<= ${b.ratio.toFixed(2)}x ${b.of}` : `<= ${b.max} ${spec.unit}`;
}

/**
 * Judges `samples` against the budget of `spec`: the median (or, with `worst`, the maximum) is
 * compared with the maximum, or divided by the baseline's median and compared with the ratio.
 */
export function judge(
  spec: LineSpec,
  samples: number[],
  options: { baseline?: { label: string; samples: number[] }; note?: string } = {},
): Line {
  const b = spec.budget;
  const line: Line = {
    id: spec.id,
    label: spec.label,
    unit: spec.unit,
    value: "worst" in b && b.worst ? Math.max(...samples) : median(samples),
    budget: budgetText(spec),
    pass: false,
    samples,
    note: options.note,
  };
  if ("ratio" in b) {
    if (!options.baseline) throw new Error(`${spec.id}: a ratio budget needs a baseline`);
    const value = median(options.baseline.samples);
    line.baseline = { label: options.baseline.label, value };
    line.baselineSamples = options.baseline.samples;
    line.ratio = line.value! / value;
    line.pass = line.ratio <= b.ratio;
  } else {
    line.pass = line.value! <= b.max;
  }
  return line;
}

/** A line that could not be measured: it fails, naming why. */
export function failedLine(spec: LineSpec, error: unknown): Line {
  const message = error instanceof Error ? error.message : String(error);
  return {
    id: spec.id,
    label: spec.label,
    unit: spec.unit,
    budget: budgetText(spec),
    pass: false,
    samples: [],
    error: message,
  };
}

function figure(value: number, unit: Line["unit"]): string {
  return unit === "MiB" ? `${value.toFixed(1)} MiB` : `${value.toFixed(3)} ${unit}`;
}

/** The report as a table, then the notes and errors of its lines. */
export function formatReport(lines: Line[]): string {
  const header = ["measure", "tool", "baseline", "ratio", "budget", "result"];
  const rows = lines.map((l) => [
    l.label,
    l.value === undefined ? "-" : figure(l.value, l.unit),
    l.baseline ? `${figure(l.baseline.value, l.unit)} (${l.baseline.label})` : "-",
    l.ratio === undefined ? "-" : `${l.ratio.toFixed(2)}x`,
    l.budget,
    l.pass ? "PASS" : "FAIL",
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const render = (cells: string[]) =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ");
  const out = [render(header), widths.map((w) => "-".repeat(w)).join("  "), ...rows.map(render)];
  const remarks = lines.flatMap((l) => (l.note ? [`  ${l.label}: ${l.note}`] : []));
  const failedBy = new Map<string, string[]>();
  for (const l of lines)
    if (l.error) failedBy.set(l.error, [...(failedBy.get(l.error) ?? []), l.label]);
  for (const [error, labels] of failedBy) remarks.push(`  ${labels.join("; ")}: ERROR ${error}`);
  if (remarks.length > 0) out.push("", "notes:", ...remarks);
  return out.join("\n") + "\n";
}

/** Writes `results` as pretty JSON to `path`. */
export async function writeResults(path: string, results: unknown): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, JSON.stringify(results, null, 2) + "\n");
}
