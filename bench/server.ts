/**
 * The benchmark's HTTP server, run as a child process (`node --import tsx bench/server.ts ROOT`)
 * so that its CPU time stays out of the measured tool process. It serves the files below ROOT on
 * 127.0.0.1 with ETag, Last-Modified, Range and If-Range, prints `{"port":N}` on its first stdout
 * line, and obeys a control API under `/_bench/`:
 *
 * - `GET  /_bench/stats`: `{ bytes: {path: body bytes sent}, requests: {path: count}, paused: [path] }`
 * - `POST /_bench/reset`: zero the counters, drop faults, no delay
 * - `POST /_bench/delay?ms=N`: answer every request N ms late
 * - `POST /_bench/fault?path=P&kind=cut|pause&after=N`: the next GET of P sends N body bytes, then
 *   closes the connection (`cut`) or goes silent, keeping it open until the client leaves (`pause`)
 */
import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { join, normalize, sep } from "node:path";

/** A one-shot misbehaviour of the next GET of a path. */
interface Fault {
  kind: "cut" | "pause";
  after: number;
}

const root = process.argv[2];
if (!root) throw new Error("usage: server.ts ROOT");

const bytes = new Map<string, number>();
const requests = new Map<string, number>();
const faults = new Map<string, Fault>();
const paused = new Set<string>();
let delayMs = 0;

function json(res: http.ServerResponse, body: unknown): void {
  res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(body));
}

function control(url: URL, res: http.ServerResponse): void {
  const q = url.searchParams;
  switch (url.pathname) {
    case "/_bench/stats":
      return json(res, {
        bytes: Object.fromEntries(bytes),
        requests: Object.fromEntries(requests),
        paused: [...paused],
      });
    case "/_bench/reset":
      bytes.clear();
      requests.clear();
      faults.clear();
      paused.clear();
      delayMs = 0;
      return json(res, { ok: true });
    case "/_bench/delay":
      delayMs = Number(q.get("ms") ?? 0);
      return json(res, { ok: true });
    case "/_bench/fault": {
      const kind = q.get("kind");
      const path = q.get("path");
      if ((kind !== "cut" && kind !== "pause") || !path) {
        res.writeHead(400).end("fault needs path and kind=cut|pause");
        return;
      }
      faults.set(path, { kind, after: Number(q.get("after") ?? 0) });
      return json(res, { ok: true });
    }
    default:
      res.writeHead(404).end();
  }
}

/** The byte range asked for, `undefined` for the whole file, `null` when unsatisfiable. */
function parseRange(
  header: string,
  size: number,
): { start: number; end: number } | undefined | null {
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === "" && m[2] === "")) return undefined;
  let start: number;
  let end: number;
  if (m[1] === "") {
    start = Math.max(0, size - Number(m[2]));
    end = size - 1;
  } else {
    start = Number(m[1]);
    end = m[2] === "" ? size - 1 : Math.min(Number(m[2]), size - 1);
  }
  return start > end || start >= size ? null : { start, end };
}

/** Streams `[start, end]` of `file`, counting body bytes and applying the path's fault, if any. */
function sendBody(
  path: string,
  file: string,
  start: number,
  end: number,
  res: http.ServerResponse,
): void {
  const fault = faults.get(path);
  faults.delete(path);
  const last = fault ? Math.min(end, start + fault.after - 1) : end;
  const stream = createReadStream(file, { start, end: last, highWaterMark: 256 * 1024 });
  res.on("close", () => {
    stream.destroy();
    paused.delete(path);
  });
  stream.on("data", (chunk) => {
    bytes.set(path, (bytes.get(path) ?? 0) + chunk.length);
    if (!res.write(chunk)) stream.pause();
  });
  res.on("drain", () => stream.resume());
  stream.on("end", () => {
    if (!fault) res.end();
    else if (fault.kind === "cut") res.socket?.end();
    else paused.add(path);
  });
  stream.on("error", () => res.destroy());
}

async function serve(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const url = new URL(req.url ?? "/", "http://127.0.0.1");
  if (url.pathname.startsWith("/_bench/")) return control(url, res);
  const path = decodeURIComponent(url.pathname);
  requests.set(path, (requests.get(path) ?? 0) + 1);
  if (delayMs > 0) await new Promise((done) => setTimeout(done, delayMs));
  const file = normalize(join(root!, path));
  const st = await stat(file).catch(() => undefined);
  if (!file.startsWith(normalize(root!) + sep) || !st?.isFile()) {
    res.writeHead(404, { "content-type": "text/plain" }).end("not found\n");
    return;
  }
  const etag = `"${st.size.toString(16)}-${Math.floor(st.mtimeMs).toString(16)}"`;
  const lastModified = new Date(Math.floor(st.mtimeMs / 1000) * 1000).toUTCString();
  const headers: http.OutgoingHttpHeaders = {
    etag,
    "last-modified": lastModified,
    "accept-ranges": "bytes",
    "content-type": "application/octet-stream",
  };
  const ifRange = req.headers["if-range"];
  const rangeAllowed = ifRange === undefined || ifRange === etag || ifRange === lastModified;
  const range =
    req.headers.range && rangeAllowed ? parseRange(req.headers.range, st.size) : undefined;
  if (range === null) {
    res.writeHead(416, { ...headers, "content-range": `bytes */${st.size}` }).end();
    return;
  }
  const { start, end } = range ?? { start: 0, end: st.size - 1 };
  headers["content-length"] = end - start + 1;
  if (range) headers["content-range"] = `bytes ${start}-${end}/${st.size}`;
  res.writeHead(range ? 206 : 200, headers);
  if (req.method === "HEAD" || st.size === 0) {
    res.end();
    return;
  }
  sendBody(path, file, start, end, res);
}

const server = http.createServer((req, res) => {
  serve(req, res).catch((err: unknown) => {
    if (!res.headersSent) res.writeHead(500).end(String(err));
    else res.destroy();
  });
});
server.listen(0, "127.0.0.1", () => {
  process.stdout.write(`${JSON.stringify({ port: (server.address() as AddressInfo).port })}\n`);
});
process.on("SIGTERM", () => {
  server.closeAllConnections();
  server.close(() => process.exit(0));
});
