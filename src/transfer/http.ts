/**
 * One HTTP(S) request over Node's own `http` / `https` clients, through the shared keep-alive
 * pools of `agents.ts` (which also apply `HTTPS_PROXY` / `HTTP_PROXY` / `NO_PROXY`), with
 * redirects followed here so that their safety rules are ours: bounded, never from https down to
 * http, and credentials (`Authorization`, cookies, the user:password of a URL) never sent to
 * another origin. Time limits (stall, low speed) are the {@link Watchdog}'s.
 */
import http, { STATUS_CODES, type IncomingMessage } from "node:http";
import https from "node:https";
import type { Readable } from "node:stream";
import { AbortedError, AxError, type SystemError } from "../errors.js";
import { agentFor } from "./agents.js";
import { ResponseBody } from "./response-body.js";
import { DEFAULT_LOW_SPEED, DEFAULT_STALL_TIMEOUT_MS } from "./tuning.js";
import { Watchdog, type Expiry, type LowSpeedRule } from "./watchdog.js";

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
  /** No byte for this long (connecting, waiting for the answer, or waiting for body bytes the
   *  reader asked for): abandon. Default {@link DEFAULT_STALL_TIMEOUT_MS}. */
  stallTimeoutMs?: number;
  /** Abandon a body arriving slower than this (default {@link DEFAULT_LOW_SPEED}). */
  lowSpeed?: LowSpeedRule;
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
  /** True when no connection could be made at all (refused, unknown host, connect timeout). */
  readonly unreachable: boolean;
  /** True when the server was abandoned by the low-speed rule. */
  readonly tooSlow: boolean;
  /** The HTTP status behind the failure, when there was an answer. */
  readonly status: number | undefined;

  constructor(
    url: string,
    reason: string,
    options: {
      retryable: boolean;
      unreachable?: boolean;
      tooSlow?: boolean;
      status?: number;
      cause?: unknown;
      hint?: string;
    },
  ) {
    super(`${url}: ${reason}`, { cause: options.cause, hint: options.hint });
    this.name = "TransferError";
    this.url = url;
    this.reason = reason;
    this.retryable = options.retryable;
    this.unreachable = options.unreachable ?? false;
    this.tooSlow = options.tooSlow ?? false;
    this.status = options.status;
  }
}

const DEFAULT_MAX_REDIRECTS = 10;
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);

/** Error codes after which the same request may well succeed. */
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
]);

/** Error codes that mean no connection could be made at all (nothing was sent). */
const UNREACHABLE_CODES = new Set([
  "ECONNREFUSED",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EAI_FAIL",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENETDOWN",
  "EADDRNOTAVAIL",
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
    unreachable: code !== undefined && UNREACHABLE_CODES.has(code),
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

function flattenHeaders(raw: IncomingMessage["headers"]): HttpResponse["headers"] {
  const headers: HttpResponse["headers"] = {};
  for (const [name, value] of Object.entries(raw)) {
    headers[name] = Array.isArray(value) ? value.join(", ") : value;
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
 * `hop` with the user:password of its URL, if any, moved into an `Authorization: Basic` header
 * (unless it has one): from there it is sent to this origin only, kept on redirects within it
 * and dropped on redirects away from it, like any `Authorization`. The URL keeps no secret.
 */
function withUrlCredentials(hop: Hop): Hop {
  const url = new URL(hop.url);
  if (url.username === "" && url.password === "") return hop;
  const headers = { ...hop.headers };
  if (headers["authorization"] === undefined) {
    const userinfo = `${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`;
    headers["authorization"] = `Basic ${Buffer.from(userinfo).toString("base64")}`;
  }
  url.username = "";
  url.password = "";
  return { ...hop, url: url.href, headers };
}

/**
 * Sends one hop and resolves with its answer once the headers arrived. A request that fails on a
 * kept-alive connection the server had closed meanwhile (a race every client of keep-alive
 * servers meets) is sent once more on a fresh one, when it is idempotent.
 */
function sendHop(
  hop: Hop,
  options: HttpRequestOptions,
  agent: http.Agent,
): Promise<{ response: IncomingMessage; body: ResponseBody }> {
  const { signal } = options;
  const target = new URL(hop.url);
  const client = target.protocol === "https:" ? https : http;
  return new Promise((resolve, reject) => {
    let body: ResponseBody | undefined;
    let failure: Error | undefined;
    const request = client.request(target, { method: hop.method, headers: hop.headers, agent });
    const done = () => signal?.removeEventListener("abort", onAbort);
    const fail = (err: Error) => {
      if (failure !== undefined) return;
      failure = err;
      if (body === undefined) request.destroy(err);
      else body.destroy(err);
    };
    const onAbort = () => fail(new AbortedError());
    const watchdog = new Watchdog(
      {
        stallTimeoutMs: options.stallTimeoutMs ?? DEFAULT_STALL_TIMEOUT_MS,
        lowSpeed: options.lowSpeed ?? DEFAULT_LOW_SPEED,
      },
      {
        connecting: () => request.socket === null || request.socket.connecting,
        bytesWritten: () => request.socket?.bytesWritten ?? 0,
      },
      (expiry: Expiry) =>
        fail(
          new TransferError(hop.url, expiry.reason, {
            retryable: true,
            unreachable: expiry.kind === "connect",
            tooSlow: expiry.kind === "slow",
          }),
        ),
    );
    signal?.addEventListener("abort", onAbort, { once: true });
    request.on("response", (response) => {
      watchdog.headersReceived();
      body = new ResponseBody(response, watchdog, done);
      resolve({ response, body });
    });
    request.on("error", (err) => {
      if (body !== undefined) return; // the body reports it
      watchdog.stop();
      done();
      const idempotent = hop.method === "GET" || hop.method === "HEAD";
      const code = errorCode(err);
      if (request.reusedSocket && idempotent && (code === "ECONNRESET" || code === "EPIPE")) {
        resolve(sendHop(hop, options, agent));
      } else {
        reject(toTransferError(failure ?? err, hop.url, signal));
      }
    });
    if (signal?.aborted) onAbort();
    request.end(hop.body);
  });
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
    if (options.signal?.aborted) throw new AbortedError();
    hop = withUrlCredentials(hop);
    const { response, body } = await sendHop(hop, options, await agentFor(new URL(hop.url)));
    const status = response.statusCode ?? 0;
    const headers = flattenHeaders(response.headers);
    const location = headers["location"];
    if (!REDIRECT_STATUSES.has(status) || location === undefined) {
      return { status, headers, url: hop.url, body };
    }
    body.discard();
    if (redirects >= maxRedirects) {
      throw new TransferError(url, `too many redirects (more than ${maxRedirects})`, {
        retryable: false,
      });
    }
    hop = nextHop(hop, status, redirectTarget(hop.url, location));
  }
}
