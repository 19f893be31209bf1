/**
 * The http(s) source: a file at a URL, resumed with `Range` + `If-Range` (the validator is the
 * strong ETag, else Last-Modified), with the headers a caller adds (an OCI registry's token)
 * renewed once when the server answers 401. Requests spend the download's retry budget.
 */
import { statusReason, TransferError } from "./http.js";
import { isRetryableStatus, requestWithBudget } from "./retry.js";
import type { OpenRequest, Source, SourceAnswer } from "./sources.js";

/** Options of {@link httpSource}. */
export interface HttpSourceOptions {
  /** Names the source (default: the URL); an OCI source names its blob by the `oci://` URL. */
  name?: string;
  /** Headers sent with every request (an `Authorization` header never follows a redirect to
   *  another origin). */
  headers?: Record<string, string>;
  /**
   * Called when the URL answers 401 (an expired token, say) with its `WWW-Authenticate` value:
   * resolves with the headers to try again with. A second 401 in a row fails the source.
   */
  reauthorize?: (challenge: string | undefined) => Promise<Record<string, string>>;
}

/** The validator `If-Range` may use: a strong ETag, else Last-Modified. */
function validatorOf(headers: Record<string, string | undefined>): string | undefined {
  const etag = headers["etag"];
  if (etag !== undefined && !etag.startsWith("W/")) return etag;
  return headers["last-modified"];
}

/** `Content-Range: bytes START-END/TOTAL` (or `bytes *\/TOTAL`), parsed; TOTAL may be `*`. */
function parseContentRange(
  value: string | undefined,
): { start: number | undefined; total: number | undefined } | undefined {
  const match = /^bytes\s+(?:(\d+)-\d+|\*)\/(\d+|\*)$/.exec(value?.trim() ?? "");
  if (!match) return undefined;
  const [, start, total] = match;
  return {
    start: start === undefined ? undefined : Number(start),
    total: total === undefined || total === "*" ? undefined : Number(total),
  };
}

function contentLength(headers: Record<string, string | undefined>): number | undefined {
  const value = headers["content-length"];
  return value !== undefined && /^\d+$/.test(value) ? Number(value) : undefined;
}

/**
 * The file at `url` as a {@link Source}. A `200` is the whole file; a `206` from the byte asked
 * for is the rest; a `416` for a `.part` that already has every byte is the whole file done. Any
 * other answer to a resume (a `416`, a range not asked for) starts over; any other status fails
 * the source with a {@link TransferError} naming it.
 */
export function httpSource(url: string, options: HttpSourceOptions = {}): Source {
  let auth = options.headers ?? {};
  return {
    name: options.name ?? url,
    async open(request: OpenRequest): Promise<SourceAnswer> {
      const { budget, signal, stallTimeoutMs, lowSpeed } = request;
      let reauthorized = false;
      for (;;) {
        const resume = request.resumeFrom(url);
        const from = resume?.offset ?? 0;
        const range: Record<string, string> =
          resume === undefined
            ? {}
            : { range: `bytes=${resume.offset}-`, "if-range": resume.validator };
        const headers = { ...auth, ...range };
        const response = await requestWithBudget(
          url,
          { headers, signal, stallTimeoutMs, lowSpeed },
          budget,
        );
        if (response.status === 401 && options.reauthorize !== undefined && !reauthorized) {
          response.body.destroy();
          auth = await options.reauthorize(response.headers["www-authenticate"]);
          reauthorized = true;
          continue;
        }
        const answered = parseContentRange(response.headers["content-range"]);
        if (response.status === 416 && from > 0) {
          response.body.destroy();
          // The .part was complete already, or the server will not resume it.
          if (answered?.total === from) return { kind: "complete", total: from };
          return { kind: "restart", url };
        }
        if (response.status === 206 && from > 0 && answered?.start === from) {
          return { kind: "bytes", url, start: from, total: answered.total, body: response.body };
        }
        if (response.status === 200) {
          const { headers: got, body } = response;
          const total = contentLength(got);
          return { kind: "bytes", url, start: 0, total, validator: validatorOf(got), body };
        }
        response.body.destroy();
        if (response.status !== 206) {
          throw new TransferError(url, statusReason(response.status), {
            status: response.status,
            retryable: isRetryableStatus(response.status),
          });
        }
        // A range we did not ask for: start over.
        const got = response.headers["content-range"] ?? "no Content-Range";
        return {
          kind: "restart",
          url,
          retry: {
            reason: `${url}: answered ${got} when asked from byte ${from}`,
            exhausted: new TransferError(url, "answers with unusable byte ranges", {
              retryable: false,
            }),
          },
        };
      }
    },
  };
}
