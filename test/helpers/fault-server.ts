/**
 * A real HTTP server on 127.0.0.1 (port 0) for tests: it serves in-memory files with ETag,
 * Last-Modified, Range and If-Range, and misbehaves on request, per path.
 *
 * ```ts
 * const server = await startFaultServer();
 * server.setFile("/a.tar.gz", bytes);
 * server.setFault("/a.tar.gz", { kind: "cut", afterBytes: 1000 }, { kind: "status", status: 500 });
 * await download({ urls: [server.url("/a.tar.gz")], ... });
 * server.requests;            // every request: method, path, headers
 * server.bytesSent("/a.tar.gz");
 * await server.close();
 * ```
 *
 * Faults queue up per path: each applies to its next `times` requests (default 1), then the next
 * fault in the queue takes over, then the path behaves normally again.
 */
import { createHash } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";

/** Misbehaviours a path can be given with {@link FaultServer.setFault}. */
export type Fault = { times?: number } & (
  | {
      /** Send the headers and `afterBytes` bytes of the body, then drop the connection. */
      kind: "cut";
      afterBytes: number;
      /** After the cut, the file changes to these bytes (and gets a new ETag/Last-Modified). */
      thenReplaceWith?: Buffer;
    }
  | {
      /** Answer this status (body: its name), with these extra headers (e.g. Retry-After). */
      kind: "status";
      status: number;
      headers?: Record<string, string>;
    }
  | {
      /** Send the headers and `afterBytes` bytes (default 0), then nothing, keeping it open. */
      kind: "stall";
      afterBytes?: number;
    }
  | {
      /** Answer nothing at all (not even headers), keeping the connection open. */
      kind: "hang";
    }
  | {
      /** Send the headers, then the body one byte at a time, one every `intervalMs`. */
      kind: "drip";
      intervalMs: number;
    }
);

/** How a file is served. */
export interface FileOptions {
  /** ETag to send: a string, `false` for none; default a strong ETag from the content. */
  etag?: string | false;
  /** Send Last-Modified (default true): a fixed date that changes whenever the file does. */
  lastModified?: boolean;
  /** Ignore Range (and If-Range): always answer 200 with the whole file. */
  ignoreRange?: boolean;
}

/** One request the server received. */
export interface RecordedRequest {
  method: string;
  /** Path with query, as sent. */
  path: string;
  /** Request headers, lower-case names. */
  headers: http.IncomingHttpHeaders;
}

/** The running server; see the module comment. */
export interface FaultServer {
  /** Port on 127.0.0.1. */
  readonly port: number;
  /** Absolute URL of `path`; `host` may be `localhost` to reach the same server by another name. */
  url(path: string, host?: string): string;
  /** Serves `body` at `path` (replacing any previous file there; the validators change). */
  setFile(path: string, body: Buffer | string, options?: FileOptions): void;
  /** Replaces the fault queue of `path` (none: the path behaves normally). */
  setFault(path: string, ...faults: Fault[]): void;
  /** Makes `path` answer a redirect to `location` (absolute, or relative to the request). */
  setRedirect(path: string, location: string, status?: number): void;
  /** Every request received, in order. */
  readonly requests: RecordedRequest[];
  /** Requests received for `path`. */
  requestsFor(path: string): RecordedRequest[];
  /** Body bytes sent for `path` (all answers, all connections). */
  bytesSent(path: string): number;
  /** Stops the server, dropping open (e.g. stalled) connections. */
  close(): Promise<void>;
}

interface ServedFile {
  body: Buffer;
  etag: string | undefined;
  lastModified: string | undefined;
  ignoreRange: boolean;
}

const SEND_CHUNK = 16 * 1024;
let fileGeneration = 0;

function servedFile(body: Buffer | string, options: FileOptions): ServedFile {
  const bytes = Buffer.from(body);
  fileGeneration++;
  const digest = createHash("sha256").update(bytes).digest("hex").slice(0, 16);
  return {
    body: bytes,
    etag: options.etag === false ? undefined : (options.etag ?? `"${digest}-${fileGeneration}"`),
    lastModified:
      options.lastModified === false
        ? undefined
        : new Date(Date.UTC(2020, 0, 1) + fileGeneration * 1000).toUTCString(),
    ignoreRange: options.ignoreRange ?? false,
  };
}

/** The byte range to serve: `[start, end)` of a `bytes=N-` / `bytes=N-M` header, if honoured. */
function requestedRange(
  req: http.IncomingMessage,
  file: ServedFile,
): { start: number; end: number } | "unsatisfiable" | undefined {
  const match = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? "");
  if (!match || file.ignoreRange) return undefined;
  const ifRange = req.headers["if-range"];
  if (ifRange !== undefined && ifRange !== file.etag && ifRange !== file.lastModified) {
    return undefined;
  }
  const start = Number(match[1]);
  const end = match[2] ? Math.min(Number(match[2]) + 1, file.body.length) : file.body.length;
  return start >= file.body.length || start >= end ? "unsatisfiable" : { start, end };
}

/** A port on 127.0.0.1 where nothing listens (connections to it are refused). */
export async function closedPort(): Promise<number> {
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Starts a fault server on 127.0.0.1 with an ephemeral port. */
export async function startFaultServer(): Promise<FaultServer> {
  const files = new Map<string, ServedFile>();
  const faults = new Map<string, Fault[]>();
  const redirects = new Map<string, { location: string; status: number }>();
  const sent = new Map<string, number>();
  const requests: RecordedRequest[] = [];

  const count = (path: string, bytes: number) => sent.set(path, (sent.get(path) ?? 0) + bytes);

  /** The fault for this request, if any, consuming one of its `times`. */
  function takeFault(path: string): Fault | undefined {
    const queue = faults.get(path);
    const fault = queue?.[0];
    if (queue === undefined || fault === undefined) return undefined;
    const left = (fault.times ?? 1) - 1;
    if (left <= 0) queue.shift();
    else queue[0] = { ...fault, times: left };
    return fault;
  }

  /** Writes `bytes` with backpressure; resolves false if the connection went away. */
  async function send(res: http.ServerResponse, path: string, bytes: Buffer): Promise<boolean> {
    for (let at = 0; at < bytes.length; at += SEND_CHUNK) {
      if (res.destroyed) return false;
      const chunk = bytes.subarray(at, at + SEND_CHUNK);
      count(path, chunk.length);
      if (!res.write(chunk)) {
        await new Promise<void>((resolve) => {
          const done = () => {
            res.off("drain", done).off("close", done);
            resolve();
          };
          res.on("drain", done).on("close", done);
        });
      }
    }
    return !res.destroyed;
  }

  async function serve(req: http.IncomingMessage, res: http.ServerResponse, path: string) {
    const redirect = redirects.get(path);
    if (redirect) {
      res.writeHead(redirect.status, { location: redirect.location }).end();
      return;
    }
    const fault = takeFault(path);
    if (fault?.kind === "hang") return;
    if (fault?.kind === "status") {
      const text = http.STATUS_CODES[fault.status] ?? "status";
      res.writeHead(fault.status, { "content-type": "text/plain", ...fault.headers }).end(text);
      return;
    }
    const file = files.get(path);
    if (file === undefined) {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found");
      return;
    }
    const headers: http.OutgoingHttpHeaders = { "accept-ranges": "bytes" };
    if (file.etag !== undefined) headers["etag"] = file.etag;
    if (file.lastModified !== undefined) headers["last-modified"] = file.lastModified;
    const range = requestedRange(req, file);
    if (range === "unsatisfiable") {
      res.writeHead(416, { ...headers, "content-range": `bytes */${file.body.length}` }).end();
      return;
    }
    const { start, end } = range ?? { start: 0, end: file.body.length };
    if (range !== undefined) {
      headers["content-range"] = `bytes ${start}-${end - 1}/${file.body.length}`;
    }
    res.writeHead(range === undefined ? 200 : 206, { ...headers, "content-length": end - start });
    if (req.method === "HEAD") {
      res.end();
      return;
    }
    const body = file.body.subarray(start, end);
    if (fault?.kind === "drip") {
      res.flushHeaders();
      for (let at = 0; at < body.length && !res.destroyed; at++) {
        if (at > 0) await sleep(fault.intervalMs);
        await send(res, path, body.subarray(at, at + 1));
      }
      res.end();
      return;
    }
    if (fault?.kind === "cut" || fault?.kind === "stall") {
      res.flushHeaders();
      const partial = body.subarray(0, fault.afterBytes ?? 0);
      await send(res, path, partial);
      if (fault.kind === "stall") return; // headers (and some bytes) sent, then silence
      res.socket?.end(); // every byte written so far arrives, then the connection closes
      if (fault.thenReplaceWith !== undefined) {
        files.set(path, servedFile(fault.thenReplaceWith, { ignoreRange: file.ignoreRange }));
      }
      return;
    }
    if (await send(res, path, body)) res.end();
  }

  const server = http.createServer((req, res) => {
    const path = req.url ?? "/";
    requests.push({ method: req.method ?? "GET", path, headers: req.headers });
    serve(req, res, path).catch(() => res.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;

  return {
    port,
    url: (path, host = "127.0.0.1") => `http://${host}:${port}${path}`,
    setFile: (path, body, options = {}) => void files.set(path, servedFile(body, options)),
    setFault: (path, ...queue) => void faults.set(path, [...queue]),
    setRedirect: (path, location, status = 302) => void redirects.set(path, { location, status }),
    requests,
    requestsFor: (path) => requests.filter((request) => request.path === path),
    bytesSent: (path) => sent.get(path) ?? 0,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeAllConnections();
      }),
  };
}
