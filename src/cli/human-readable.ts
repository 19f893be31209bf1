/** Figures and tables for people: byte counts, durations, padded tables, counted nouns. */
import { display } from "./output.js";

/**
 * Human units for byte counts and rates, rounded: `442 B`, `1.50 MiB`, `12.3 GiB` (three
 * significant digits at most, whole bytes below 1 KiB).
 */
export function formatBytes(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  if (!Number.isFinite(bytes)) return "?";
  let value = bytes;
  let unit = 0;
  while (Math.round(value) >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0
    ? `${Math.round(bytes)} B`
    : `${value.toFixed(value < 10 ? 2 : value < 100 ? 1 : 0)} ${units[unit]}`;
}

/** `1m05s`, `12s`, `0.4s`. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "?";
  if (seconds < 10) return `${seconds.toFixed(1)}s`;
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, "0")}m`;
}

/**
 * A plain text table with a header row, columns padded to their widest cell: its lines, each cell
 * as {@link display} shows it (so that the padding is computed on what is printed).
 */
export function formatTable(header: string[], rows: string[][]): string[] {
  const shown = rows.map((row) => row.map(display));
  const widths = header.map((h, i) => Math.max(h.length, ...shown.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join("  ")
      .trimEnd();
  return [line(header), ...shown.map(line)];
}
