/**
 * The CLI on a real terminal: a pseudo-terminal of a given size (util-linux `script`, which CI has
 * as part of Debian's essential packages), keys typed into it (Ctrl-C as the terminal sends it),
 * and a small screen model that replays what the CLI wrote, to see what a user would see.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { CLI, cliEnv } from "./images.js";

/** A CLI started in a pseudo-terminal. */
export interface TerminalRun {
  child: ChildProcess;
  /** Everything written to the terminal so far (stdout and stderr together, as a user sees). */
  output(): string;
  /** Resolves once the output contains `text` (or the run ended). */
  waitFor(text: string | RegExp): Promise<void>;
  /** Types `keys` on the terminal (`"\x03"` is Ctrl-C). */
  type(keys: string): void;
  /** Resolves with the CLI's exit status when it ends. */
  closed: Promise<number | null>;
}

const quote = (arg: string) => `'${arg.replaceAll("'", "'\\''")}'`;

/** Starts `axvisor-image ...args` on a terminal of `columns` x `rows`. */
export function startInTerminal(
  args: string[],
  options: { columns: number; rows?: number; cwd?: string; env?: Record<string, string> },
): TerminalRun {
  const command = [process.execPath, CLI, ...args].map(quote).join(" ");
  const setup = `stty cols ${options.columns} rows ${options.rows ?? 24}`;
  const child = spawn("script", ["-q", "-e", "-c", `${setup}; exec ${command}`, "/dev/null"], {
    cwd: options.cwd,
    env: cliEnv({ TERM: "xterm", ...options.env }),
    stdio: ["pipe", "pipe", "inherit"],
  });
  let text = "";
  const waiters: (() => void)[] = [];
  child.stdout!.on("data", (d: Buffer) => {
    text += d.toString("utf8");
    waiters.splice(0).forEach((w) => w());
  });
  const closed = new Promise<number | null>((resolve) =>
    child.on("close", (code) => {
      waiters.splice(0).forEach((w) => w());
      resolve(code);
    }),
  );
  const ended = () => child.exitCode !== null || child.signalCode !== null;
  return {
    child,
    output: () => text,
    async waitFor(wanted) {
      const found = () => (typeof wanted === "string" ? text.includes(wanted) : wanted.test(text));
      while (!found() && !ended()) await new Promise<void>((r) => waiters.push(r));
    },
    type: (keys) => child.stdin!.write(keys),
    closed,
  };
}

/**
 * What a terminal of `width` columns shows after `output`: enough of a VT100 for the CLI's
 * progress bars (carriage return, line feed, cursor up, erase line and screen, hidden cursor,
 * colours ignored), with the lines that wrapped noted.
 */
export class Screen {
  /** The rows, top to bottom. */
  readonly rows: string[][] = [[]];
  /** Every line that wrapped (a character written past the last column), as it was then. */
  readonly wrapped: string[] = [];
  /** Every row as it was when a line feed left it: each line the CLI finished, frames included. */
  readonly finished: string[] = [];
  #row = 0;
  #col = 0;

  /** Columns of the terminal. */
  readonly width: number;

  constructor(width: number, output = "") {
    this.width = width;
    this.feed(output);
  }

  /** The screen's text, one string per row, without trailing blanks. */
  lines(): string[] {
    return this.rows.map((r) => r.join("").trimEnd());
  }

  /** Replays `text` on the screen. */
  feed(text: string): void {
    for (let i = 0; i < text.length; i++) {
      const c = text[i]!;
      if (c === "\x1b" && text[i + 1] === "[") {
        let end = i + 2;
        while (end < text.length && "?0123456789;".includes(text[end]!)) end++;
        this.#control(text.slice(i + 2, end), text[end] ?? "");
        i = end;
        continue;
      }
      if (c === "\r") this.#col = 0;
      else if (c === "\n") {
        this.finished.push(this.#line().join("").trimEnd());
        this.#moveTo(this.#row + 1);
      } else if (c >= " ") {
        if (this.#col >= this.width) {
          this.wrapped.push(this.#line().join(""));
          this.#col = 0;
          this.#moveTo(this.#row + 1);
        }
        this.#line()[this.#col++] = c;
      }
    }
  }

  #line(): string[] {
    while (this.rows.length <= this.#row) this.rows.push([]);
    for (let k = 0; k < this.#col; k++) this.rows[this.#row]![k] ??= " ";
    return this.rows[this.#row]!;
  }

  #moveTo(row: number): void {
    this.#row = Math.max(0, row);
    this.#line();
  }

  #control(params: string, command: string): void {
    const n = params.startsWith("?") ? NaN : Number(params || "0");
    if (command === "A") this.#moveTo(this.#row - Math.max(1, n));
    else if (command === "K") {
      const line = this.#line();
      if (n === 2) line.length = 0;
      else line.length = Math.min(line.length, this.#col);
    } else if (command === "J" && n === 0) {
      this.#line().length = Math.min(this.#line().length, this.#col);
      this.rows.length = this.#row + 1;
    }
    // m (colours), ?25l / ?25h (cursor), and anything else: nothing to show
  }
}
