/**
 * tinyproxy, a real forward proxy, on 127.0.0.1: plain requests in absolute form and CONNECT
 * tunnels, with Basic credentials required. Its log names every request it relayed.
 */
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { startDaemon, startOnFreePorts, type Daemon } from "./daemon.js";

/** A running tinyproxy. */
export interface Tinyproxy extends Daemon {
  /** `http://USER:PASSWORD@127.0.0.1:<port>`: the proxy URL with its credentials. */
  readonly url: string;
  /** The proxy URL without credentials (requests through it get 407). */
  readonly anonymousUrl: string;
  /** The request lines it relayed (`GET http://...`, `CONNECT host:port`), in order. */
  relayed(): Promise<string[]>;
}

/** Starts tinyproxy in `dir` (a fresh directory), requiring `user`:`password`. */
export function startTinyproxy(dir: string, user: string, password: string): Promise<Tinyproxy> {
  return startOnFreePorts(1, async ([port]) => {
    const log = join(dir, "tinyproxy.log");
    const config = join(dir, "tinyproxy.conf");
    await writeFile(
      config,
      [
        `Port ${port}`,
        "Listen 127.0.0.1",
        "Timeout 60",
        `LogFile "${log}"`,
        "LogLevel Connect",
        `PidFile "${join(dir, "tinyproxy.pid")}"`,
        "MaxClients 100",
        "Allow 127.0.0.1",
        `BasicAuth ${user} ${password}`,
        "DisableViaHeader Yes",
        "",
      ].join("\n"),
    );
    const daemon = await startDaemon("tinyproxy", ["-d", "-c", config], [port!]);
    const anonymousUrl = `http://127.0.0.1:${port}`;
    return {
      ...daemon,
      url: `http://${encodeURIComponent(user)}:${encodeURIComponent(password)}@127.0.0.1:${port}`,
      anonymousUrl,
      async relayed() {
        const text = await readFile(log, "utf8").catch(() => "");
        return [...text.matchAll(/Request \(file descriptor \d+\): (\S+ \S+)/g)].map((m) => m[1]!);
      },
    };
  });
}
