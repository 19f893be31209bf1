/**
 * A real HTTP server on 127.0.0.1 for the registry tests: serves text files with ETag and
 * Last-Modified, answers conditional requests with 304, and can delay answers, fail paths with a
 * status, or generate files on the fly. It records every request and the most requests it was
 * answering at once.
 */
import { createHash } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";

/** One request received, and the status it was answered with (once answered). */
export interface SeenRequest {
  path: string;
  headers: http.IncomingHttpHeaders;
  status?: number;
}

/** See the module comment. */
export interface RegistryServer {
  /** Absolute URL of `path` on this server. */
  url(path: string): string;
  /** Serves `body` at `path` with a strong ETag from its content. */
  setFile(path: string, body: string | Buffer): void;
  /** Makes `path` answer `status` (undefined: serve normally again). */
  setStatus(path: string, status: number | undefined): void;
  /** Content for paths that have no file; undefined: 404. */
  generate?: (path: string) => string | undefined;
  /** Delay before each answer, in ms. */
  delayMs: number;
  /** Send bodies chunked, without Content-Length. */
  chunked: boolean;
  readonly requests: SeenRequest[];
  /** The most requests the server was answering at the same time. */
  readonly maxConcurrent: number;
  /** Forgets files, statuses, requests and settings: back to a fresh server. */
  reset(): void;
  close(): Promise<void>;
}

/** Starts a {@link RegistryServer} on 127.0.0.1 with an ephemeral port. */
export async function startRegistryServer(): Promise<RegistryServer> {
  const files = new Map<string, Buffer>();
  const statuses = new Map<string, number>();
  let active = 0;
  let maxConcurrent = 0;
  const requests: SeenRequest[] = [];

  /** The status, headers and body of the answer to `req`. */
  const answerFor = (req: http.IncomingMessage, path: string): [number, object, Buffer?] => {
    const status = statuses.get(path);
    if (status !== undefined) return [status, {}, Buffer.from(http.STATUS_CODES[status] ?? "")];
    const generated = server.generate?.(path);
    const body = files.get(path) ?? (generated === undefined ? undefined : Buffer.from(generated));
    if (body === undefined) return [404, {}, Buffer.from("not found")];
    const etag = `"${createHash("sha256").update(body).digest("hex").slice(0, 16)}"`;
    const headers = { etag, "last-modified": "Wed, 01 Jan 2025 00:00:00 GMT" };
    return req.headers["if-none-match"] === etag ? [304, headers] : [200, headers, body];
  };

  const httpServer = http.createServer((req, res) => {
    const path = req.url ?? "/";
    const seen: SeenRequest = { path, headers: req.headers };
    requests.push(seen);
    active++;
    maxConcurrent = Math.max(maxConcurrent, active);
    const answer = () => {
      active--;
      const [status, headers, body] = answerFor(req, path);
      seen.status = status;
      res.writeHead(status, { "content-type": "text/plain; charset=utf-8", ...headers });
      if (server.chunked && body !== undefined) res.write(body);
      res.end(server.chunked ? undefined : body);
    };
    if (server.delayMs > 0) setTimeout(answer, server.delayMs);
    else answer();
  });
  await new Promise<void>((resolve) => httpServer.listen(0, "127.0.0.1", resolve));
  const { port } = httpServer.address() as AddressInfo;

  const server: RegistryServer = {
    url: (path) => `http://127.0.0.1:${port}${path}`,
    setFile: (path, body) => void files.set(path, Buffer.from(body)),
    setStatus: (path, status) =>
      void (status === undefined ? statuses.delete(path) : statuses.set(path, status)),
    delayMs: 0,
    chunked: false,
    requests,
    get maxConcurrent() {
      return maxConcurrent;
    },
    reset() {
      files.clear();
      statuses.clear();
      requests.length = 0;
      maxConcurrent = 0;
      server.delayMs = 0;
      server.chunked = false;
      server.generate = undefined;
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        httpServer.close((err) => (err ? reject(err) : resolve()));
        httpServer.closeAllConnections();
      }),
  };
  return server;
}
