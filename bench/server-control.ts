/** Starts `bench/server.ts` in a child process and drives its control API (see that module). */
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

/** What the server has sent since the last reset. */
export interface ServerStats {
  /** Body bytes sent, per path. */
  bytes: Record<string, number>;
  /** Requests received, per path. */
  requests: Record<string, number>;
  /** Paths whose `pause` fault is holding a connection open right now. */
  paused: string[];
}

/** A running benchmark server. */
export interface BenchServer {
  /** `http://127.0.0.1:<port><path>`. */
  url(path: string): string;
  /** Counters since the last {@link BenchServer.reset}. */
  stats(): Promise<ServerStats>;
  /** Zeroes the counters, drops faults and the delay. */
  reset(): Promise<void>;
  /** Answers every request `ms` late. */
  setDelay(ms: number): Promise<void>;
  /** Makes the next GET of `path` stop after `after` body bytes: close (`cut`) or go silent (`pause`). */
  setFault(path: string, kind: "cut" | "pause", after: number): Promise<void>;
  /** Stops the server process. */
  stop(): Promise<void>;
}

/** Starts the server on 127.0.0.1 serving the files below `root`. */
export async function startServer(root: string): Promise<BenchServer> {
  const script = fileURLToPath(new URL("./server.ts", import.meta.url));
  const child: ChildProcess = spawn(process.execPath, ["--import", "tsx", script, root], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const lines = createInterface({ input: child.stdout! });
  const [first] = (await Promise.race([
    once(lines, "line"),
    once(child, "exit").then(() => {
      throw new Error("the benchmark server exited before listening");
    }),
  ])) as [string];
  const { port } = JSON.parse(first) as { port: number };
  const base = `http://127.0.0.1:${port}`;

  const call = async (path: string, method = "POST"): Promise<unknown> => {
    const res = await fetch(base + path, { method });
    if (!res.ok) throw new Error(`benchmark server: ${method} ${path} answered ${res.status}`);
    return res.json();
  };
  return {
    url: (path) => base + path,
    stats: async () => (await call("/_bench/stats", "GET")) as ServerStats,
    reset: async () => void (await call("/_bench/reset")),
    setDelay: async (ms) => void (await call(`/_bench/delay?ms=${ms}`)),
    setFault: async (path, kind, after) =>
      void (await call(
        `/_bench/fault?${new URLSearchParams({ path, kind, after: String(after) })}`,
      )),
    stop: async () => {
      if (child.exitCode !== null) return;
      const exited = once(child, "exit");
      child.kill("SIGTERM");
      await exited;
    },
  };
}
