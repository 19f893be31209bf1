/**
 * `registry check`: lint a registry the way `sync` reads it (the file and every include), but
 * collect every problem instead of stopping at the first: TOML syntax and the format's rules (one
 * problem per faulty entry, with its line), duplicate and conflicting entries, includes that
 * cannot be read, the load limits, and with `online` image URLs that do not answer.
 */
import { stat } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { mapSettled } from "../concurrency.js";
import { AbortedError, AxError } from "../errors.js";
import { silentLogger, type Logger } from "../log.js";
import { blockText, registryBlocks } from "./edit.js";
import { parseRegistry } from "./format.js";
import { DEFAULT_LIMITS, withAbsoluteUrls } from "./load.js";
import { resolveInclude, toLocation } from "./location.js";
import { mergeImages, type ImageSource } from "./merge.js";
import { formatSpec } from "./resolve.js";
import { readRegistrySource } from "./source.js";
import type { ImageEntry, IncludeEntry } from "./types.js";

/** Options of {@link checkRegistry}. */
export interface CheckOptions {
  /** Also send a HEAD request for every image URL (http/https; file:// URLs must exist). */
  online?: boolean;
  signal?: AbortSignal;
  /** Warnings (unknown keys, URLs not checked) go to `warn` as they arise. */
  logger?: Logger;
}

/** What {@link checkRegistry} found. */
export interface CheckReport {
  /** Every registry file read, in breadth-first order. */
  files: string[];
  /** Distinct images (by name and version) in the files that could be read. */
  images: number;
  /** Every problem, one line each, naming the file (and line), image or URL at fault. */
  problems: string[];
  /** Things that do not stop `sync` but deserve a look (unknown keys). */
  warnings: string[];
}

/** What linting one file gave. */
interface FileLint {
  images: ImageEntry[];
  includes: IncludeEntry[];
  problems: string[];
}

/**
 * Lints the registry at `location` (http(s) URL, `file://` URL or path) and its includes. Never
 * throws for a problem of the registry itself: problems are returned, in the order found.
 *
 * @throws AbortedError when `signal` aborts.
 */
export async function checkRegistry(
  location: string,
  options: CheckOptions = {},
): Promise<CheckReport> {
  const logger = options.logger ?? silentLogger;
  const report: CheckReport = { files: [], images: 0, problems: [], warnings: [] };
  const warn = (message: string) => {
    report.warnings.push(message);
    logger.warn(message);
  };
  let root: string;
  try {
    root = toLocation(location);
  } catch (err) {
    report.problems.push(messageOf(err));
    return report;
  }
  const sources: ImageSource[] = [];
  const seen = new Set([root]);
  let level = [{ location: root, depth: 0, parent: undefined as string | undefined }];
  while (level.length > 0) {
    const texts = await Promise.all(level.map((file) => readText(file.location, options.signal)));
    const next: typeof level = [];
    level.forEach((file, i) => {
      const text = texts[i]!;
      if (text instanceof AxError) {
        const by = file.parent === undefined ? "" : ` (included by ${file.parent})`;
        report.problems.push(`${text.message}${by}`);
        return;
      }
      report.files.push(file.location);
      const lint = lintFile(text, file.location, warn);
      report.problems.push(...lint.problems, ...repeatedEntries(lint.images, file.location));
      sources.push({ source: file.location, images: lint.images });
      for (const include of lint.includes) {
        let target: string;
        try {
          target = resolveInclude(file.location, include.url);
        } catch (err) {
          report.problems.push(messageOf(err));
          continue;
        }
        if (seen.has(target)) continue;
        seen.add(target);
        const problem = limitProblem(file, target, seen.size);
        if (problem) report.problems.push(problem);
        else next.push({ location: target, depth: file.depth + 1, parent: file.location });
      }
    });
    level = next;
  }
  const merged = mergeImages(sources);
  report.problems.push(...merged.warnings);
  report.images = merged.images.length;
  if (options.online)
    report.problems.push(...(await unreachableImages(merged.images, warn, options)));
  return report;
}

/** `err` as a problem of the registry; cancellation and internal errors are thrown on. */
function asProblem(err: unknown): AxError {
  if (err instanceof AbortedError || !(err instanceof AxError)) throw err;
  return err;
}

function messageOf(err: unknown): string {
  return asProblem(err).message;
}

async function readText(
  location: string,
  signal: AbortSignal | undefined,
): Promise<string | AxError> {
  try {
    return (await readRegistrySource(location, (text) => text, { signal })).value;
  } catch (err) {
    return asProblem(err);
  }
}

function limitProblem(parent: { location: string; depth: number }, target: string, files: number) {
  if (parent.depth + 1 > DEFAULT_LIMITS.maxDepth) {
    return `${parent.location}: include ${target} is more than ${DEFAULT_LIMITS.maxDepth} levels below the root`;
  }
  if (files > DEFAULT_LIMITS.maxFiles) {
    return `${parent.location}: include ${target} is past the limit of ${DEFAULT_LIMITS.maxFiles} files`;
  }
  return undefined;
}

/**
 * The file as `sync` parses it; when that fails, each `[[images]]` / `[[includes]]` block parsed
 * on its own (line numbers kept), so that every faulty entry is reported and the good ones still
 * count.
 */
function lintFile(text: string, source: string, warn: (message: string) => void): FileLint {
  try {
    const file = withAbsoluteUrls(source, parseRegistry(text, source, { onWarning: warn }));
    return { ...file, problems: [] };
  } catch (err) {
    const first = messageOf(err);
    const lint: FileLint = { images: [], includes: [], problems: [] };
    const entriesBefore = { images: 0, includes: 0 };
    for (const block of registryBlocks(text)) {
      const before = { ...entriesBefore };
      if (block.table !== undefined) entriesBefore[block.table] += 1;
      try {
        const options = { onWarning: warn, entriesBefore: before };
        const parsed = parseRegistry(blockText(text, block), source, options);
        const part = withAbsoluteUrls(source, parsed);
        lint.images.push(...part.images);
        lint.includes.push(...part.includes);
      } catch (blockErr) {
        lint.problems.push(messageOf(blockErr));
      }
    }
    if (lint.problems.length === 0) lint.problems.push(first);
    return lint;
  }
}

/** Entries listed more than once, identically, in one file (conflicts are the merge's to report). */
function repeatedEntries(images: ImageEntry[], source: string): string[] {
  const seen = new Map<string, string>();
  const problems: string[] = [];
  for (const image of images) {
    const key = `${image.name}\0${image.version}`;
    const content = JSON.stringify(image);
    if (seen.get(key) === content)
      problems.push(`${source}: image ${formatSpec(image)} is listed twice`);
    else if (!seen.has(key)) seen.set(key, content);
  }
  return problems;
}

/** Online check: one problem per image whose URL does not answer with a success. */
async function unreachableImages(
  images: ImageEntry[],
  warn: (message: string) => void,
  options: CheckOptions,
): Promise<string[]> {
  const outcomes = await mapSettled(
    images,
    8,
    async (image, signal) => {
      const problem = await urlProblem(image.url, warn, signal);
      return problem === undefined ? undefined : `image ${formatSpec(image)}: ${problem}`;
    },
    options.signal,
  );
  const problems = outcomes.map((outcome) => {
    if (outcome.status === "rejected") throw outcome.reason;
    return outcome.value;
  });
  return problems.filter((p) => p !== undefined);
}

async function urlProblem(
  url: string,
  warn: (message: string) => void,
  signal: AbortSignal | undefined,
): Promise<string | undefined> {
  const scheme = new URL(url).protocol;
  if (scheme === "file:") {
    const path = fileURLToPath(url);
    return (await stat(path)
      .then((s) => s.isFile())
      .catch(() => false))
      ? undefined
      : `${url}: no such file`;
  }
  if (scheme !== "http:" && scheme !== "https:") {
    warn(`${url}: not checked (only http, https and file URLs are)`);
    return undefined;
  }
  const { requestWithRetry } = await import("../transfer/retry.js");
  const { statusReason } = await import("../transfer/http.js");
  try {
    let response = await requestWithRetry(url, { method: "HEAD", signal, retries: 2 });
    response.body.destroy();
    if (response.status === 405 || response.status === 501) {
      // some servers refuse HEAD: ask for the first byte instead
      response = await requestWithRetry(url, {
        headers: { range: "bytes=0-0" },
        signal,
        retries: 2,
      });
      response.body.destroy();
    }
    return response.status < 300 ? undefined : `${url}: ${statusReason(response.status)}`;
  } catch (err) {
    return messageOf(err);
  }
}
