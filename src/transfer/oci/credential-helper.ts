/**
 * Docker credential helpers: `docker-credential-NAME get`, found on `PATH`, as docker, oras and
 * crane run them (the protocol of docker/docker-credential-helpers): the registry host on stdin,
 * `{"ServerURL","Username","Secret"}` on stdout; a `Username` of `<token>` makes `Secret` an
 * identity token; a helper without a login for the host exits non-zero saying "credentials not
 * found". The helper runs under a time limit, its stderr is not read, and its answer never
 * reaches a message: a failure says what went wrong, not what it printed if that could hold the
 * secret.
 */
import { spawn } from "node:child_process";
import { AbortedError } from "../../errors.js";

/**
 * How long a helper may take: long enough for one that asks for a passphrase (`pass` through
 * gpg-agent's pinentry), bounded so that a stuck one cannot hang a pull.
 */
export const CREDENTIAL_HELPER_TIMEOUT_MS = 60_000;
/** The longest answer read from a helper. */
const MAX_ANSWER_BYTES = 64 * 1024;
/** Helper names as Docker's own helpers spell them; anything else (a path) is refused. */
const HELPER_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
/** The identity-token user name of the protocol. */
const TOKEN_USER = "<token>";

/** What a helper gave for a host. */
export type HelperAnswer =
  | { kind: "password"; username: string; password: string }
  | { kind: "identity-token"; token: string }
  /** The helper has no login for the host. */
  | { kind: "not-found" };

/** Options of {@link runCredentialHelper}. */
export interface HelperOptions {
  /** The environment it runs in (its `PATH` finds it). */
  env: Record<string, string | undefined>;
  /** Kills it when aborted. */
  signal?: AbortSignal;
  /** Default {@link CREDENTIAL_HELPER_TIMEOUT_MS}. */
  timeoutMs?: number;
}

/** A helper that could not answer; its message never holds the helper's output when that could
 *  hold a secret. */
export class CredentialHelperError extends Error {
  /** True when the program is not on `PATH`. */
  readonly missing: boolean;

  constructor(message: string, options: { missing?: boolean } = {}) {
    super(message);
    this.name = "CredentialHelperError";
    this.missing = options.missing ?? false;
  }
}

/**
 * The program a helper name runs: `docker-credential-NAME`; undefined for a name that is not one.
 */
export function helperProgram(name: string): string | undefined {
  return HELPER_NAME.test(name) ? `docker-credential-${name}` : undefined;
}

/** What ran and how it ended. */
interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
}

function run(program: string, host: string, options: HelperOptions): Promise<Run> {
  const timeoutMs = options.timeoutMs ?? CREDENTIAL_HELPER_TIMEOUT_MS;
  return new Promise((resolve, reject) => {
    const child = spawn(program, ["get"], {
      env: options.env,
      stdio: ["pipe", "pipe", "ignore"],
    });
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const settle = (fn: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      options.signal?.removeEventListener("abort", onAbort);
      fn();
    };
    // Ends it now, without waiting for whatever it started to let go of its stdout.
    const stop = (err: Error) => {
      child.kill("SIGKILL");
      child.stdout.destroy();
      settle(() => reject(err));
    };
    const timer = setTimeout(
      () => stop(new CredentialHelperError(`did not answer within ${timeoutMs / 1000} s`)),
      timeoutMs,
    );
    const onAbort = () => stop(new AbortedError());
    options.signal?.addEventListener("abort", onAbort, { once: true });
    if (options.signal?.aborted) onAbort();
    child.stdout.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_ANSWER_BYTES) stop(new CredentialHelperError("answered too much"));
      else chunks.push(chunk);
    });
    child.on("error", (err) => settle(() => reject(err)));
    child.on("close", (code, signal) =>
      settle(() => resolve({ code, signal, stdout: Buffer.concat(chunks).toString("utf8") })),
    );
    child.stdin.on("error", () => {}); // it may exit without reading its input
    child.stdin.end(host); // no newline: as the Go client writes it
  });
}

/** The first line of a failed helper's message, unless it could hold a login. */
function failureMessage(stdout: string): string {
  const line = stdout.trim().split("\n")[0]?.trim() ?? "";
  if (line === "" || /[{}]|secret/i.test(line)) return "";
  return `: ${line.length > 200 ? `${line.slice(0, 200)}...` : line}`;
}

/**
 * Runs `program get` for `host` and reads its answer.
 *
 * @throws CredentialHelperError when it cannot run (`ENOENT`: not on `PATH`), fails, times out or
 *   answers with something that is not a login; AbortedError when `options.signal` aborts.
 */
export async function runCredentialHelper(
  program: string,
  host: string,
  options: HelperOptions,
): Promise<HelperAnswer> {
  let done: Run;
  try {
    done = await run(program, host, options);
  } catch (err) {
    if (err instanceof CredentialHelperError || err instanceof AbortedError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT") throw new CredentialHelperError("is not on PATH", { missing: true });
    throw new CredentialHelperError(`cannot run: ${(err as Error).message}`);
  }
  if (done.code !== 0) {
    if (/credentials not found/i.test(done.stdout)) return { kind: "not-found" };
    const how = done.signal === null ? `exit status ${done.code}` : `killed by ${done.signal}`;
    throw new CredentialHelperError(`failed (${how})${failureMessage(done.stdout)}`);
  }
  let answer: { Username?: unknown; Secret?: unknown };
  try {
    answer = JSON.parse(done.stdout) as typeof answer;
  } catch {
    answer = {};
  }
  const { Username: username, Secret: secret } = answer ?? {};
  if (
    typeof username !== "string" ||
    username === "" ||
    typeof secret !== "string" ||
    secret === ""
  ) {
    throw new CredentialHelperError("answered without a Username and Secret (JSON)");
  }
  if (username === TOKEN_USER) return { kind: "identity-token", token: secret };
  return { kind: "password", username, password: secret };
}
