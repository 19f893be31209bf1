/**
 * Reading the password of a secret key as minisign does: from the terminal without echo, or, when
 * standard input is not a terminal, one line of it, so that
 * `printf '%s\n' "$PASSWORD" | axvisor-image registry sign ...` works in CI. Two questions in one
 * run (`keygen` asks twice) read two lines.
 */
import { AbortedError, AxError } from "../errors.js";
import type { SigningKey } from "../minisign.js";
import { display } from "./output.js";

/** minisign reads at most 1 KiB of password. */
const MAX_PASSWORD_BYTES = 1024;

function tooLong(): AxError {
  return new AxError(`password longer than ${MAX_PASSWORD_BYTES} bytes`);
}

/** What standard input has given and not been taken yet, and whether it has ended. */
let pending = Buffer.alloc(0);
let stdinEnded = false;
let chunks: AsyncIterator<Buffer> | undefined;

/** The next line of standard input (without its line end), or undefined at its end. */
async function stdinLine(): Promise<string | undefined> {
  for (;;) {
    const newline = pending.indexOf(0x0a);
    if (newline >= 0 || (stdinEnded && pending.length > 0)) {
      const end = newline >= 0 ? newline : pending.length;
      const line = pending.subarray(0, end);
      pending = pending.subarray(end + 1);
      if (line.length > MAX_PASSWORD_BYTES + 1) throw tooLong();
      return line.toString("utf8").replace(/\r$/, "");
    }
    if (stdinEnded) return undefined;
    if (pending.length > MAX_PASSWORD_BYTES + 1) throw tooLong();
    chunks ??= process.stdin[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
    const next = await chunks.next();
    if (next.done) stdinEnded = true;
    else pending = Buffer.concat([pending, next.value]);
  }
}

/**
 * A line typed on the terminal after `prompt`, not echoed: Backspace and Ctrl-U edit, Ctrl-C
 * aborts. Echo is off before the prompt shows, so nothing typed after it is ever echoed.
 */
function terminalLine(prompt: string): Promise<string> {
  const input = process.stdin;
  return new Promise((resolve, reject) => {
    let typed: string[] = [];
    const finish = (outcome: () => void) => {
      input.off("data", onData);
      input.setRawMode(false);
      input.pause();
      process.stderr.write("\n");
      outcome();
    };
    const onData = (data: Buffer) => {
      for (const char of data.toString("utf8")) {
        if (char === "\r" || char === "\n") return finish(() => resolve(typed.join("")));
        if (char === "\x03") return finish(() => reject(new AbortedError("interrupted")));
        if (char === "\x04" && typed.length === 0) {
          return finish(() => reject(new AxError("no password given")));
        }
        if (char === "\x7f" || char === "\b") typed.pop();
        else if (char === "\x15") typed = [];
        else if (char >= " ") typed.push(char);
        if (Buffer.byteLength(typed.join("")) > MAX_PASSWORD_BYTES) {
          return finish(() => reject(tooLong()));
        }
      }
    };
    input.setRawMode(true);
    process.stderr.write(display(prompt));
    input.on("data", onData);
    input.resume();
  });
}

/**
 * Asks for the password of `what` (`secret key KEY`) with `prompt`, on stderr when standard input
 * is a terminal.
 *
 * @throws AxError naming `what` when standard input ends before a line; AxError when the line is
 *   over 1 KiB; AbortedError on Ctrl-C.
 */
export async function readPassword(prompt: string, what: string): Promise<string> {
  if (process.stdin.isTTY) return terminalLine(prompt);
  const line = await stdinLine();
  if (line === undefined) {
    throw new AxError(`${what}: no password (standard input ended)`, {
      hint: "type it on a terminal, or give it as a line of standard input",
    });
  }
  return line;
}

/**
 * The signing key of a `--key` option: the minisign secret key file at `path`, its password asked
 * for when it is encrypted.
 */
export async function openSigningKey(path: string): Promise<SigningKey> {
  const { loadSigningKey } = await import("../ops/sign.js");
  const password = () => readPassword(`Password for ${path}: `, `secret key ${path}`);
  return loadSigningKey(path, { password });
}
