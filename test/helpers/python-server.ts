/**
 * `python3 -m http.server`: the simplest web server there is, and the one tgosimages' README names
 * for local distribution. It speaks HTTP/1.0: every answer ends by closing the connection.
 */
import { startDaemon, startOnFreePorts, type Daemon } from "./daemon.js";

/** A running `python3 -m http.server` serving a directory. */
export interface PythonServer extends Daemon {
  /** `http://127.0.0.1:<port>/<path>`. */
  url(path: string): string;
}

/** Serves `dir` on 127.0.0.1 with `python3 -m http.server`. */
export function startPythonServer(dir: string): Promise<PythonServer> {
  return startOnFreePorts(1, async ([port]) => {
    const args = ["-m", "http.server", String(port), "--bind", "127.0.0.1", "--directory", dir];
    const daemon = await startDaemon("python3", args, [port!]);
    return { ...daemon, url: (path) => `http://127.0.0.1:${port}/${path.replace(/^\//, "")}` };
  });
}
