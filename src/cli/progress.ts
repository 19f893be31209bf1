/**
 * The progress of pulls on stderr: live bars on a terminal, a few plain lines elsewhere (CI logs,
 * files). Speeds and times count the bytes of this run only: a resumed download says where it
 * resumed, and the bytes an earlier run left are not counted as received now.
 */
import type { Logger } from "../log.js";
import type { PullProgress } from "../ops/pull.js";
import { formatBytes, formatDuration } from "./human-readable.js";
import {
  display,
  isInteractive,
  setLiveArea,
  stderrLogger,
  writeStderr,
  type LiveArea,
} from "./output.js";

/** Shows the progress of pulls and carries their log lines without tearing the bars. */
export interface ProgressView {
  /** Log lines go through the view so they print above live bars. */
  logger: Logger;
  /** Feed a progress event; phase `done` ends the image's bar with a summary line. */
  update(progress: PullProgress): void;
  /** Stop rendering (before the process prints results or exits); bars left are removed. */
  stop(): void;
}

/** One image's current phase, as the views follow it. */
interface Track {
  phase: PullProgress["phase"];
  /** When this phase started (for a download: when its source answered). */
  start: number;
  received: number;
  total?: number;
  /** Bytes of `received` an earlier pull had downloaded. */
  resumed: number;
  /** For plain output: the next quarter to report. */
  nextQuarter: number;
}

/** Phases that move bytes over the network: a download, or a `publish` upload. */
function transfers(phase: PullProgress["phase"]): boolean {
  return phase === "download" || phase === "upload";
}

function newTrack(p: PullProgress): Track {
  const resumed = p.resumed ?? 0;
  const done = p.total ? Math.floor((p.received / p.total) * 4) : 0;
  return {
    phase: p.phase,
    start: Date.now(),
    received: p.received,
    total: p.total,
    resumed,
    nextQuarter: done + 1,
  };
}

function follow(t: Track, p: PullProgress): void {
  t.received = p.received;
  t.total = p.total ?? t.total;
  t.resumed = p.resumed ?? t.resumed;
}

/** Bytes per second of this run's bytes. */
function speed(t: Track, now: number): number {
  const seconds = (now - t.start) / 1000;
  return seconds > 0 ? Math.max(0, t.received - t.resumed) / seconds : 0;
}

/** The line a transfer starts with: its size, or where a download resumes. */
function startLine(image: string, t: Track): string {
  if (t.resumed > 0) {
    const of = t.total === undefined ? "(size unknown)" : `of ${formatBytes(t.total)}`;
    return `resuming ${image} at ${formatBytes(t.resumed)} ${of}`;
  }
  const verb = t.phase === "upload" ? "sending" : "receiving";
  return `${image}: ${verb} ${t.total === undefined ? "(size unknown)" : formatBytes(t.total)}`;
}

/** The line a transfer ends with: this run's bytes, time and speed. */
function summary(image: string, t: Track): string {
  const now = Date.now();
  const line = `${image}: ${formatBytes(t.received - t.resumed)} in ${formatDuration((now - t.start) / 1000)} (${formatBytes(speed(t, now))}/s)`;
  return t.resumed > 0 ? `${line}, resumed at ${formatBytes(t.resumed)}` : line;
}

/**
 * Plain lines for logs and CI: one when a download starts (or resumes), one at each quarter when
 * the size is known, one at the end. No carriage returns, no escape sequences.
 */
function plainView(quiet: boolean): ProgressView {
  const logger = stderrLogger({ quiet });
  const tracks = new Map<string, Track>();
  return {
    logger,
    update(p) {
      if (p.phase === "done") {
        const done = tracks.get(p.image);
        if (done) logger.info(summary(p.image, done));
        tracks.delete(p.image);
        return;
      }
      if (!transfers(p.phase)) return;
      let t = tracks.get(p.image);
      if (!t) {
        t = newTrack(p);
        tracks.set(p.image, t);
        logger.info(startLine(p.image, t));
      }
      follow(t, p);
      if (t.total && t.nextQuarter < 4 && p.received >= (t.total * t.nextQuarter) / 4) {
        const percent = Math.floor((p.received / t.total) * 100);
        logger.info(
          `${p.image}: ${percent}% (${formatBytes(p.received)} of ${formatBytes(t.total)})`,
        );
        t.nextQuarter = Math.floor((p.received / t.total) * 4) + 1;
      }
    },
    stop() {},
  };
}

/** Redraws per second of the bars. */
const FRAME_MS = 100;
/** Widths of a bar's fixed fields, so that the fields of every bar line up. */
const WIDTH = { percent: 4, sizes: 17, speed: 10, eta: 10 };
const MIN_BAR = 10;
const MAX_BAR = 40;
/** What a bar says of the phases without a size. */
const DOING: Partial<Record<PullProgress["phase"], string>> = {
  verify: "verifying",
  extract: "extracting",
};

/** `text` cut to `width` columns, ending with `…` when it was cut. */
function cut(text: string, width: number): string {
  return text.length <= width ? text : `${text.slice(0, Math.max(0, width - 1))}…`;
}

/**
 * One bar line, at most `width` columns: the image name (padded to `nameWidth`), the bar, the
 * percentage, bytes so far and in all, speed, and the time left. When the line would not fit, the
 * least useful go first: the bar shrinks to {@link MIN_BAR}, then the byte counts go, then the
 * speed, then the bar; the percentage and the time left stay, the name is cut last.
 */
function barLine(image: string, t: Track, width: number, nameWidth: number): string {
  const name = cut(image, nameWidth).padEnd(nameWidth);
  if (!transfers(t.phase)) {
    return cut(`${name} ${DOING[t.phase] ?? t.phase} ${formatBytes(t.received)}`, width);
  }
  const rate = speed(t, Date.now());
  const fraction = t.total ? Math.min(1, t.received / t.total) : undefined;
  const left = t.total && rate > 0 ? formatDuration((t.total - t.received) / rate) : "?";
  const percent = `${fraction === undefined ? "?" : Math.floor(fraction * 100)}%`;
  const sizes = `${formatBytes(t.received)}/${t.total ? formatBytes(t.total) : "?"}`;
  const fields = {
    percent: percent.padStart(WIDTH.percent),
    sizes: sizes.padStart(WIDTH.sizes),
    speed: `${formatBytes(rate)}/s`.padStart(WIDTH.speed),
    eta: `ETA ${left}`.padEnd(WIDTH.eta),
  };
  const layouts = [
    [fields.percent, fields.sizes, fields.speed, fields.eta],
    [fields.percent, fields.speed, fields.eta],
    [fields.percent, fields.eta],
  ].map((parts) => parts.join(" "));
  for (const rest of layouts) {
    const room = width - name.length - rest.length - 4; // two spaces, two brackets
    if (room >= MIN_BAR) {
      const size = Math.min(room, MAX_BAR);
      const full = fraction === undefined ? 0 : Math.round(fraction * size);
      const bar = "=".repeat(full) + (full < size ? ">" : "");
      return `${name} [${bar.slice(0, size).padEnd(size)}] ${rest}`.trimEnd();
    }
  }
  const rest = layouts.find((r) => name.length + 1 + r.length <= width) ?? layouts.at(-1)!;
  return `${cut(name, Math.max(1, width - rest.length - 1))} ${rest}`.trimEnd();
}

/**
 * Live bars, one per image, at the bottom of stderr: every other line is written above them
 * (`writeStderr`), they fit the terminal's width (nothing wraps), they are erased (not left
 * behind, no blank line) when the pulls end, and they are never drawn again once `signal` aborts.
 */
function barView(quiet: boolean, images: string[], signal?: AbortSignal): ProgressView {
  const out = process.stderr;
  const tracks = new Map<string, Track>();
  let nameWidth = Math.max(1, ...images.map((i) => display(i).length));
  let drawn = 0;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let cursorHidden = false;
  const showCursor = () => {
    if (cursorHidden) out.write("\x1b[?25h");
    cursorHidden = false;
  };

  const lines = (): string[] => {
    const width = Math.max(20, (out.columns || 80) - 1);
    const room = Math.max(1, (out.rows || 24) - 2);
    const shown = [...tracks].filter(([, t]) => t.phase !== "wait");
    const all = shown.map(([image, t]) => barLine(display(image), t, width, nameWidth));
    if (all.length <= room) return all;
    return [...all.slice(0, room - 1), cut(`... and ${all.length - room + 1} more`, width)];
  };
  /** Back to where the bars began, each bar line rewritten in place, the rest cleared. */
  const draw = () => {
    if (stopped) return;
    const next = lines();
    let text = drawn > 0 ? `\r\x1b[${drawn}A` : "";
    text += next.map((line) => `\x1b[2K${line}\n`).join("");
    if (next.length < drawn) text += "\x1b[J";
    if (next.length > 0 && !cursorHidden) {
      text = `\x1b[?25l${text}`;
      cursorHidden = true;
    }
    if (text !== "") out.write(text);
    drawn = next.length;
  };
  const area: LiveArea = {
    erase() {
      if (drawn > 0) out.write(`\r\x1b[${drawn}A\x1b[J`);
      drawn = 0;
    },
    redraw: draw,
  };
  const halt = () => {
    stopped = true;
    if (timer) clearInterval(timer);
  };
  setLiveArea(area);
  process.once("exit", showCursor);
  signal?.addEventListener("abort", halt, { once: true });

  const logger: Logger = {
    info: (m) => {
      if (!quiet) writeStderr(`${display(m)}\n`);
    },
    warn: (m) => writeStderr(`warning: ${display(m)}\n`),
  };
  return {
    logger,
    update(p) {
      if (stopped) return;
      const t = tracks.get(p.image);
      if (p.phase === "done") {
        tracks.delete(p.image);
        if (t !== undefined && transfers(t.phase)) logger.info(summary(p.image, t));
        else draw();
        return;
      }
      if (t === undefined || t.phase !== p.phase) {
        const fresh = newTrack(p);
        tracks.set(p.image, fresh);
        nameWidth = Math.max(nameWidth, display(p.image).length);
        if (transfers(p.phase) && fresh.resumed > 0) logger.info(startLine(p.image, fresh));
      } else follow(t, p);
      timer ??= setInterval(draw, FRAME_MS).unref();
    },
    stop() {
      halt();
      area.erase();
      showCursor();
      setLiveArea(undefined);
      process.removeListener("exit", showCursor);
    },
  };
}

/**
 * The progress view for this terminal: bars on a TTY (unless quiet), plain lines elsewhere.
 * `images` are the images about to be pulled (their names are aligned); `signal` stops the bars
 * for good when it aborts (Ctrl-C).
 */
function createProgressView(quiet: boolean, images: string[], signal?: AbortSignal): ProgressView {
  return isInteractive() && !quiet ? barView(quiet, images, signal) : plainView(quiet);
}

/**
 * Runs `fn` with the progress view for this terminal (see {@link createProgressView}), stopping
 * the view however `fn` ends.
 */
export async function withProgressView<T>(
  quiet: boolean,
  images: string[],
  signal: AbortSignal | undefined,
  fn: (view: ProgressView) => Promise<T>,
): Promise<T> {
  const view = createProgressView(quiet, images, signal);
  try {
    return await fn(view);
  } finally {
    view.stop();
  }
}
