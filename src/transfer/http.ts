/**
 * One HTTP(S) request over undici (loaded lazily, and only the parts used), through a shared
 * proxy-aware agent configured from `HTTPS_PROXY` / `HTTP_PROXY` / `NO_PROXY` (either case), with
 * redirects followed here so that their safety rules are ours: bounded, never from https down to
 * http, and an `Authorization` header never sent to another origin.
 */
import { STATUS_CODES } from "node:http";
import { createRequire } from "node:module";
import type { Readable } from "node:stream";
import type { Dispatcher } from "undici";
import { AbortedError, AxError, type SystemError } from "../errors.js";
import { installFinGuard } from "./undici-fin-guard.js";

/** Options of {@link httpRequest}. */
export interface HttpRequestOptions {
  /** HTTP method; `GET` by default. */
  method?: string;
  /** Request headers (names in any case). */
  headers?: Record<string, string>;
  /** Request body, e.g. for uploads. */
  body?: Buffer | string;
  /** Cancels the request, and the response body once it is flowing. */
  signal?: AbortSignal;
  /** No byte for this long (waiting for headers, or between body chunks): abandon. Default 30000.
   *  undici checks it with a coarse timer: expect up to about a second more. */
  stallTimeoutMs?: number;
  /** How many redirects to follow at most; default 10. */
  maxRedirects?: number;
}

/** The answer to {@link httpRequest}, after redirects. */
export interface HttpResponse {
  /** HTTP status code. */
  status: number;
  /** Response headers: lower-case names, repeated values joined with `", "`. */
  headers: Record<string, string | undefined>;
  /** Final URL after redirects. */
  url: string;
  /** The response body: the caller must consume or destroy it (destroying it early is safe; its
   *  errors reach readers through iteration or `pipeline`). */
  body: Readable;
}

/**
 * A failure to get an answer from a server, as `<url>: <reason>`; it says whether trying again may
 * help.
 */
export class TransferError extends AxError {
  /** The URL at fault. */
  readonly url: string;
  /** What went wrong, without the URL (e.g. `connection refused`, `HTTP 404 Not Found`). */
  readonly reason: string;
  /** True when the same request may succeed later (connection reset, timeout, 5xx...). */
  readonly retryable: boolean;
  /** The HTTP status behind the failure, when there was an answer. */
  readonly status: number | undefined;

  constructor(
    url: string,
    reason: string,
    options: { retryable: boolean; status?: number; cause?: unknown; hint?: string },
  ) {
    super(`${url}: ${reason}`, { cause: options.cause, hint: options.hint });
    this.name = "TransferError";
    this.url = url;
    this.reason = reason;
    this.retryable = options.retryable;
    this.status = options.status;
  }
}

/** Default for {@link HttpRequestOptions.stallTimeoutMs}. */
export const DEFAULT_STALL_TIMEOUT_MS = 30_000;
const DEFAULT_MAX_REDIRECTS = 10;
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);

/** Error codes (Node system errors and undici's) after which the same request may well succeed. */
const RETRYABLE_CODES = new Set([
  "ECONNRESET",
  "ECONNREFUSED",
  "ECONNABORTED",
  "EPIPE",
  "ETIMEDOUT",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENETDOWN",
  "UND_ERR_CONNECT_TIMEOUT",
  "UND_ERR_HEADERS_TIMEOUT",
  "UND_ERR_BODY_TIMEOUT",
  "UND_ERR_SOCKET",
  "UND_ERR_CLOSED",
  "UND_ERR_RES_CONTENT_LENGTH_MISMATCH",
]);

/** Plain words for the most common codes, so the one-line message reads well. */
const CODE_WORDS: Record<string, string> = {
  ECONNRESET: "connection reset",
  ECONNREFUSED: "connection refused",
  ETIMEDOUT: "connection timed out",
  ENOTFOUND: "host not found",
  EAI_AGAIN: "host name lookup failed (temporary)",
  EHOSTUNREACH: "host unreachable",
  ENETUNREACH: "network unreachable",
  ENOENT: "no such file",
  EACCES: "permission denied",
  EISDIR: "is a directory",
  UND_ERR_CONNECT_TIMEOUT: "connection timed out",
  UND_ERR_HEADERS_TIMEOUT: "no response (stalled)",
  UND_ERR_BODY_TIMEOUT: "no data received (stalled)",
  UND_ERR_SOCKET: "connection closed by the server",
  UND_ERR_RES_CONTENT_LENGTH_MISMATCH: "response shorter than announced",
};

function errorCode(err: unknown): string | undefined {
  if (!(err instanceof Error)) return undefined;
  const code = (err as SystemError).code;
  if (code !== undefined) return code;
  return err.cause === undefined ? undefined : errorCode(err.cause);
}

/**
 * Turns anything thrown while requesting `url` or reading its body into a {@link TransferError}
 * naming the URL (or an {@link AbortedError} when `signal` was aborted). AxErrors pass through.
 */
export function toTransferError(err: unknown, url: string, signal?: AbortSignal): AxError {
  if (err instanceof AxError) return err;
  if (signal?.aborted) return new AbortedError();
  const code = errorCode(err);
  const words =
    (code !== undefined ? CODE_WORDS[code] : undefined) ??
    (err instanceof Error ? err.message : String(err));
  return new TransferError(url, words, {
    retryable: code !== undefined && RETRYABLE_CODES.has(code),
    cause: err,
  });
}

/** `HTTP 404 Not Found`: a status as a {@link TransferError.reason}. */
export function statusReason(status: number): string {
  const text = STATUS_CODES[status];
  return text === undefined ? `HTTP ${status}` : `HTTP ${status} ${text}`;
}

/**
 * Where a redirect from `fromUrl` with `Location: location` leads, as an absolute URL. Throws a
 * non-retryable {@link TransferError} for a target that is not http(s), or that would go from https
 * down to plain http.
 */
export function redirectTarget(fromUrl: string, location: string): string {
  let target: URL;
  try {
    target = new URL(location, fromUrl);
  } catch (err) {
    throw new TransferError(fromUrl, `redirects to an invalid URL: ${location}`, {
      retryable: false,
      cause: err,
    });
  }
  if (target.protocol !== "http:" && target.protocol !== "https:") {
    throw new TransferError(fromUrl, `redirects to an unsupported URL: ${target.href}`, {
      retryable: false,
    });
  }
  if (new URL(fromUrl).protocol === "https:" && target.protocol === "http:") {
    throw new TransferError(
      fromUrl,
      `redirects from https down to plain http (${target.href}): refused`,
      { retryable: false },
    );
  }
  return target.href;
}

/** The proxy-related environment the shared agent was built from; it is rebuilt when that changes. */
function proxyEnvironment(): string {
  const { http_proxy, HTTP_PROXY, https_proxy, HTTPS_PROXY } = process.env;
  return JSON.stringify([http_proxy, HTTP_PROXY, https_proxy, HTTPS_PROXY]);
}

let sharedAgent: { env: string; agent: Dispatcher } | undefined;

let EnvHttpProxyAgent: typeof import("undici").EnvHttpProxyAgent | undefined;

/**
 * Loads the undici modules this layer needs, not undici's index: the index also loads fetch,
 * WebSocket, caches and more, and costs 70-160 ms at start-up against ~30 ms for these (undici
 * has no `exports` map; `package.json` pins the 7.30 line these paths belong to). Like the index,
 * it mixes the request API into every dispatcher; and it installs the guard against undici's
 * paused-parser crash (see undici-fin-guard.ts).
 */
function loadUndici(): typeof import("undici").EnvHttpProxyAgent {
  if (!EnvHttpProxyAgent) {
    const require = createRequire(import.meta.url);
    const { kParser } = require("undici/lib/core/symbols.js") as { kParser: symbol };
    installFinGuard(kParser);
    const dispatcher = require("undici/lib/dispatcher/dispatcher.js") as { prototype: object };
    Object.assign(dispatcher.prototype, require("undici/lib/api/index.js"));
    EnvHttpProxyAgent = require("undici/lib/dispatcher/env-http-proxy-agent.js");
  }
  return EnvHttpProxyAgent!;
}

/** The shared `EnvHttpProxyAgent` (NO_PROXY is re-read by undici itself on every request). */
function agentForEnvironment(): Dispatcher {
  const env = proxyEnvironment();
  if (sharedAgent?.env !== env) {
    // Requests still running on the previous agent finish first; closing never fails them.
    sharedAgent?.agent.close().catch(() => {});
    const Agent = loadUndici();
    sharedAgent = { env, agent: new Agent() };
  }
  return sharedAgent.agent;
}

function flattenHeaders(
  raw: Record<string, string | string[] | undefined>,
): HttpResponse["headers"] {
  const headers: HttpResponse["headers"] = {};
  for (const [name, value] of Object.entries(raw)) {
    headers[name.toLowerCase()] = Array.isArray(value) ? value.join(", ") : value;
  }
  return headers;
}

function lowerCaseNames(headers: Record<string, string> | undefined): Record<string, string> {
  const lowered: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers ?? {})) lowered[name.toLowerCase()] = value;
  return lowered;
}

/** One request on the wire, before redirects. */
interface Hop {
  url: string;
  method: string;
  headers: Record<string, string>;
  body: Buffer | string | undefined;
}

/** The request that follows a redirect answer `status` from `hop` to `target`. */
function nextHop(hop: Hop, status: number, target: string): Hop {
  const headers = { ...hop.headers };
  if (new URL(target).origin !== new URL(hop.url).origin) {
    delete headers["authorization"];
    delete headers["cookie"];
  }
  const becomesGet =
    (status === 303 && hop.method !== "HEAD") ||
    ((status === 301 || status === 302) && hop.method === "POST");
  if (!becomesGet) return { ...hop, url: target, headers };
  for (const name of ["content-type", "content-length", "content-encoding"]) delete headers[name];
  return { url: target, method: "GET", headers, body: undefined };
}

/**
 * Sends one HTTP(S) request and resolves with the answer, whatever its status, after following
 * redirects (301/302/303/307/308, at most `maxRedirects`). Connection failures and stalls reject
 * with a {@link TransferError} naming the URL; cancellation rejects with an `AbortedError`.
 */
export async function httpRequest(
  url: string,
  options: HttpRequestOptions = {},
): Promise<HttpResponse> {
  const stall = options.stallTimeoutMs ?? DEFAULT_STALL_TIMEOUT_MS;
  const maxRedirects = options.maxRedirects ?? DEFAULT_MAX_REDIRECTS;
  let hop: Hop = {
    url,
    method: (options.method ?? "GET").toUpperCase(),
    headers: lowerCaseNames(options.headers),
    body: options.body,
  };
  for (let redirects = 0; ; redirects++) {
    const protocol = URL.canParse(hop.url) ? new URL(hop.url).protocol : "";
    if (protocol !== "http:" && protocol !== "https:") {
      throw new TransferError(hop.url, "not an http(s) URL", { retryable: false });
    }
    let answer: Dispatcher.ResponseData;
    try {
      const target = new URL(hop.url);
      answer = await agentForEnvironment().request({
        origin: target.origin,
        path: target.pathname + target.search,
        method: hop.method as Dispatcher.HttpMethod,
        headers: hop.headers,
        body: hop.body,
        signal: options.signal,
        headersTimeout: stall,
        bodyTimeout: stall,
      });
    } catch (err) {
      throw toTransferError(err, hop.url, options.signal);
    }
    const headers = flattenHeaders(answer.headers);
    const location = headers["location"];
    if (!REDIRECT_STATUSES.has(answer.statusCode) || location === undefined) {
      // undici's body emits an error when destroyed early: destroying must be harmless here.
      answer.body.on("error", () => {});
      return { status: answer.statusCode, headers, url: hop.url, body: answer.body };
    }
    await answer.body.dump().catch(() => {}); // lets the connection be reused
    if (redirects >= maxRedirects) {
      throw new TransferError(url, `too many redirects (more than ${maxRedirects})`, {
        retryable: false,
      });
    }
    hop = nextHop(hop, answer.statusCode, redirectTarget(hop.url, location));
  }
}
