/**
 * Where a file's bytes come from, behind one small interface for every kind of URL, as pacote's
 * fetchers are: a {@link Source} only answers with a byte stream and what makes a later resume safe
 * (the byte it starts at, the file's size, a validator). The download (`download.ts`) does the rest
 * once for every source: the `.part` and its resume metadata, retries, the integrity check and
 * progress. {@link openSources} is the one place that looks at a URL's scheme: `oci://` (its code
 * loaded only when such a URL appears), `file://`, and http(s).
 *
 * This module loads nothing itself: a warm pull may import it without loading HTTP.
 */
import type { Readable } from "node:stream";
import type { ArchiveNaming } from "../archive/extensions.js";
import type { Logger } from "../log.js";
import type { TransferError } from "./http.js";
import type { RetryBudget } from "./retry.js";
import type { LowSpeedRule } from "./watchdog.js";

/** Where the `.part` can resume a file from: its length, and the validator its bytes came with. */
export interface ResumePoint {
  /** Bytes of the file the `.part` holds. */
  offset: number;
  /** The strong ETag (else Last-Modified) the server sent with them: what `If-Range` sends. */
  validator: string;
}

/** What a source is asked with, each time the download (re)opens it. */
export interface OpenRequest {
  /**
   * Where to resume the file `url` serves, when the `.part` holds the start of an earlier answer
   * from `url` (in this run or an earlier one); undefined: ask for the whole file.
   */
  resumeFrom(url: string): ResumePoint | undefined;
  /** This source's retries: failed requests spend them, bytes that flowed renew them. */
  budget: RetryBudget;
  /** Cancels the request. */
  signal?: AbortSignal;
  /** No byte for this long: abandon the connection. */
  stallTimeoutMs?: number;
  /** Slower than this: abandon the connection. */
  lowSpeed?: LowSpeedRule;
}

/** A source's answer to {@link Source.open}. */
export type SourceAnswer =
  | {
      kind: "bytes";
      /** The URL the bytes came from, to which the `.part`'s resume metadata is tied. */
      url: string;
      /** The byte `body` starts at: 0 (the whole file), or the offset resumed from. */
      start: number;
      /** Size of the whole file, when known. */
      total?: number;
      /** What a later resume sends back (a strong ETag, else Last-Modified); none: no resume. */
      validator?: string;
      /** The bytes; the download consumes or destroys it. */
      body: Readable;
      /** Read on this machine: no resume, no retry, no length check (the integrity check
       *  catches a file that changed while it was read). */
      local?: boolean;
    }
  /** The `.part` already holds the whole file: `total` bytes. */
  | { kind: "complete"; total: number }
  /**
   * The source cannot resume from the `.part`: start it over (the metadata tied to `url`) and open
   * again at once, or, with `retry`, after spending a retry on `retry.reason` (when none is left,
   * the download fails with `retry.exhausted`).
   */
  | {
      kind: "restart";
      url: string;
      retry?: { reason: string; exhausted: TransferError };
    };

/** Where a file's bytes come from (see the module comment). */
export interface Source {
  /** Names the source in messages and in the download's result: the URL as written. */
  readonly name: string;
  /**
   * Asks for the file's bytes: all of them, or the rest when `request.resumeFrom` says the
   * `.part` holds their start. A {@link TransferError} means that this source cannot serve the
   * file (the download moves on to the next one); any other error ends the download.
   */
  open(request: OpenRequest): Promise<SourceAnswer>;
}

/** What a file must be. */
export interface Integrity {
  /** Its sha256: 64 lower-case hex digits. */
  sha256: string;
  /** What it is, for messages: `image NAME`. */
  what: string;
}

/** Options of {@link openSources}. */
export interface SourceOptions {
  /** What the file must be: an OCI source checks its layer against it before any byte comes. */
  integrity?: Integrity;
  /** The registry entry's `arch`: an OCI image index's child manifest is picked by it. */
  arch?: string;
  /** OCI registry hosts (`host[:port]`) that may be reached over plain HTTP. */
  insecureRegistries?: readonly string[];
  /** Retries of an OCI registry's requests (manifests, tokens). */
  retries?: number;
  /** No byte for this long: abandon an OCI registry's request. */
  stallTimeoutMs?: number;
  /** Told about retries. */
  logger?: Logger;
  /** Cancels an OCI registry's requests. */
  signal?: AbortSignal;
}

/** The kinds of source, by URL scheme. */
export type SourceKind = "oci" | "file" | "http";

const OCI_SCHEME = /^oci:\/\//i;

/** Which kind of source serves `url`: `oci://`, `file:`, or anything else as http(s). */
export function sourceKind(url: string): SourceKind {
  if (OCI_SCHEME.test(url)) return "oci";
  if (url.startsWith("file:")) return "file";
  return "http";
}

/**
 * The sources of `urls`, in order (mirrors first, the original last: a mirror's OCI layer that is
 * not the file's is skipped, the original's is a checksum error). Each kind's module is loaded
 * only when one of `urls` needs it.
 */
export async function openSources(
  urls: readonly string[],
  options: SourceOptions,
): Promise<Source[]> {
  const kinds = new Set(urls.map(sourceKind));
  const [oci, file, http] = await Promise.all([
    kinds.has("oci") ? import("./oci/source.js") : undefined,
    kinds.has("file") ? import("./file-source.js") : undefined,
    kinds.has("http") ? import("./http-source.js") : undefined,
  ]);
  return urls.map((url, index) => {
    switch (sourceKind(url)) {
      case "oci":
        return oci!.ociSource(url, options, index === urls.length - 1);
      case "file":
        return file!.fileSource(url);
      case "http":
        return http!.httpSource(url);
    }
  });
}

/**
 * What the sources say of the name of an archive whose URLs do not name it: an OCI layer's title
 * and compression, from the first `oci://` URL of `urls` whose manifest answers at once (no
 * retries). Undefined when none does, or when no URL is an `oci://` one (nothing is loaded then).
 */
export async function archiveNaming(
  urls: readonly string[],
  options: SourceOptions,
): Promise<ArchiveNaming | undefined> {
  if (!urls.some((url) => sourceKind(url) === "oci")) return undefined;
  return (await import("./oci/source.js")).archiveNaming(urls, options);
}
