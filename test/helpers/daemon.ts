/**
 * Real servers nobody here wrote (python3 -m http.server, nginx, tinyproxy), run by the tests as
 * child processes on 127.0.0.1: started in the foreground, waited for until they accept
 * connections, and killed when the test closes them (or when the test process exits).
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { connect } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { closedPort } from "./fault-server.js";

/** A running server process. */
export interface Daemon {
  readonly child: ChildProcess;
  /** Everything it printed so far (stdout and stderr). */
  output(): string;
  /** Kills it and waits for it to be gone. */
  stop(): Promise<void>;
}

/** Why a test needing `command` must skip, or false when `command` is on the PATH. */
export function missing(command: string): string | false {
  const found = spawnSync("sh", ["-c", `command -v ${command}`]).status === 0;
  return found ? false : `${command} is not installed (.ci/run installs it)`;
}

const running = new Set<ChildProcess>();
process.on("exit", () => {
  for (const child of running) child.kill("SIGKILL");
});

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

/**
 * Starts `command args` and resolves once it accepts connections on every port of `ports`;
 * rejects (with what it printed) when it exits first or takes more than 10 s.
 */
export async function startDaemon(
  command: string,
  args: string[],
  ports: number[],
  options: { cwd?: string } = {},
): Promise<Daemon> {
  const child = spawn(command, args, { cwd: options.cwd, stdio: ["ignore", "pipe", "pipe"] });
  running.add(child);
  let printed = "";
  child.stdout!.on("data", (d: Buffer) => (printed += d));
  child.stderr!.on("data", (d: Buffer) => (printed += d));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  exited.then(() => running.delete(child));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    await exited;
  };
  for (let i = 0; i < 200; i++) {
    if (child.exitCode !== null || child.signalCode !== null) break;
    if ((await Promise.all(ports.map(accepts))).every(Boolean)) {
      return { child, output: () => printed, stop };
    }
    await sleep(50);
  }
  await stop();
  throw new Error(`${command} did not start: ${printed.trim()}`);
}

/**
 * Starts a server with {@link startDaemon} on fresh free ports (`count` of them, handed to
 * `launch`), trying again with other ports when one was taken meanwhile.
 */
export async function startOnFreePorts<T>(
  count: number,
  launch: (ports: number[]) => Promise<T>,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    const ports: number[] = [];
    for (let i = 0; i < count; i++) ports.push(await closedPort());
    try {
      return await launch(ports);
    } catch (err) {
      if (attempt >= 3) throw err;
    }
  }
}
