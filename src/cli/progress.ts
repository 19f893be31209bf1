import type { MultiBar, SingleBar } from "cli-progress";
import type { Logger } from "../log.js";
import type { PullProgress } from "../ops/pull.js";
import { formatBytes, formatDuration } from "./human-readable.js";
import { display, isInteractive, stderrLogger } from "./output.js";

/** Shows the progress of pulls and carries their log lines without tearing the bars. */
export interface ProgressView {
  /** Log lines go through the view so they print above live bars. */
  logger: Logger;
  /** Feed a progress event; phase `done` ends the image's bar with a summary line. */
  update(progress: PullProgress): void;
  /** Stop rendering (before the process prints results or exits); bars left are removed. */
  stop(): void;
}

interface Track {
  start: number;
  total?: number;
  received: number;
  phase: PullProgress["phase"];
  /** For plain output: the next quarter to report. */
  nextQuarter: number;
  bar?: SingleBar;
}

/** Phases that move bytes over the network: a download, or a `publish` upload. */
function transfers(phase: PullProgress["phase"]): boolean {
  return phase === "download" || phase === "upload";
}

function speed(track: Track): number {
  const seconds = (Date.now() - track.start) / 1000;
  return seconds > 0 ? track.received / seconds : 0;
}

function summary(image: string, track: Track): string {
  const seconds = (Date.now() - track.start) / 1000;
  return `${image}: ${formatBytes(track.received)} in ${formatDuration(seconds)} (${formatBytes(speed(track))}/s)`;
}

/**
 * Plain lines for logs and CI: one when a download starts, one at each quarter when the size is
 * known, one at the end. No carriage returns.
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
        t = { start: Date.now(), total: p.total, received: 0, phase: p.phase, nextQuarter: 1 };
        tracks.set(p.image, t);
        const verb = p.phase === "upload" ? "sending" : "receiving";
        logger.info(`${p.image}: ${verb} ${p.total ? formatBytes(p.total) : "(size unknown)"}`);
      }
      t.received = p.received;
      t.total = p.total;
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

/** Live bars with bytes, speed and ETA, one per image, on a terminal. */
async function barView(quiet: boolean): Promise<ProgressView> {
  const { default: cliProgress } = await import("cli-progress");
  const multibar: MultiBar = new cliProgress.MultiBar(
    {
      format: "{image} [{bar}] {percent} {done}/{size} {speed} ETA {left}",
      barsize: 24,
      hideCursor: true,
      clearOnComplete: false,
      stopOnComplete: false,
      autopadding: true,
      noTTYOutput: false,
      stream: process.stderr,
    },
    cliProgress.Presets.shades_classic,
  );
  const tracks = new Map<string, Track>();
  const payload = (image: string, t: Track) => {
    const rate = speed(t);
    const left = t.total ? (t.total - t.received) / (rate || 1) : NaN;
    return {
      image: display(transfers(t.phase) ? image : `${image} (${t.phase})`),
      percent: t.total ? `${Math.floor((t.received / t.total) * 100)}%`.padStart(4) : "  ?%",
      done: formatBytes(t.received),
      size: t.total ? formatBytes(t.total) : "?",
      speed: `${formatBytes(rate)}/s`,
      left: t.total ? formatDuration(left) : "?",
    };
  };
  // With bars on screen, lines go through the multibar so they print above the bars.
  const write = (line: string) => {
    if (tracks.size > 0) multibar.log(line);
    else process.stderr.write(line);
  };
  const logger: Logger = {
    info: (m) => {
      if (!quiet) write(`${display(m)}\n`);
    },
    warn: (m) => write(`warning: ${display(m)}\n`),
  };
  return {
    logger,
    update(p) {
      let t = tracks.get(p.image);
      if (p.phase === "done") {
        if (t?.bar) multibar.remove(t.bar);
        if (t !== undefined && transfers(t.phase)) logger.info(summary(p.image, t));
        multibar.update();
        tracks.delete(p.image);
        return;
      }
      if (p.phase === "wait") return; // the logger already said so
      if (!t || t.phase !== p.phase) {
        if (t?.bar) multibar.remove(t.bar);
        t = { start: Date.now(), total: p.total, received: 0, phase: p.phase, nextQuarter: 1 };
        tracks.set(p.image, t);
        t.bar = multibar.create(p.total ?? 0, 0, payload(p.image, t));
      }
      t.received = p.received;
      t.total = p.total ?? t.total;
      if (t.total) t.bar?.setTotal(t.total);
      t.bar?.update(p.received, payload(p.image, t));
    },
    stop() {
      multibar.update();
      multibar.stop();
    },
  };
}

/** The progress view for this terminal: bars on a TTY (unless quiet), plain lines elsewhere. */
export async function createProgressView(quiet: boolean): Promise<ProgressView> {
  return isInteractive() && !quiet ? barView(quiet) : plainView(quiet);
}

/** Runs `fn` with the progress view for this terminal, stopping the view however `fn` ends. */
export async function withProgressView<T>(
  quiet: boolean,
  fn: (view: ProgressView) => Promise<T>,
): Promise<T> {
  const view = await createProgressView(quiet);
  try {
    return await fn(view);
  } finally {
    view.stop();
  }
}
