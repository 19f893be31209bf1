/** Shared pieces of the registry tests: the real registry files, error checks, a served world. */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { after, before, beforeEach } from "node:test";
import { AxError } from "../../src/errors.js";
import { tempDir } from "../helpers/images.js";
import { startRegistryServer, type RegistryServer } from "./registry-server.js";

/** The real registry files of axvisor-guest, copied into test/fixtures/. */
export const FIXTURES = fileURLToPath(
  new URL("../fixtures/axvisor-guest-registry/", import.meta.url),
);

/** The fixture files: default.toml and the versioned files. */
export const FIXTURE_FILES = [
  "default.toml",
  "v0.0.20.toml",
  "v0.0.22.toml",
  "v0.0.23.toml",
  "v0.0.24.toml",
  "v0.0.25.toml",
  "v0.0.26.toml",
];

/** Text of a fixture file. */
export function fixture(name: string): string {
  return readFileSync(join(FIXTURES, name), "utf8");
}

/** The fixture's includes pointed at `base` (e.g. `http://127.0.0.1:PORT/registry/`). */
export function rewriteIncludes(text: string, base: string): string {
  return text.replaceAll(
    "https://raw.githubusercontent.com/arceos-hypervisor/axvisor-guest/refs/heads/main/registry/",
    base,
  );
}

/** What an action gave: its value, or the message of the error it threw. */
export type Outcome<T> = { ok: true; value: T } | { ok: false; message: string };

/**
 * Runs `action`. A thrown error must be a `type` (an AxError by default) with a one-line message;
 * anything else fails the test.
 */
export async function outcome<T>(
  action: () => T | Promise<T>,
  type: abstract new (...args: never[]) => AxError = AxError,
): Promise<Outcome<T>> {
  try {
    return { ok: true, value: await action() };
  } catch (err) {
    assert.ok(err instanceof type, `expected a ${type.name}, got ${String(err)}`);
    assert.doesNotMatch(err.message, /\n/);
    return { ok: false, message: err.message };
  }
}

/** The one-line message of the `type` error `action` must throw. */
export async function failureMessage(
  action: () => unknown,
  type: abstract new (...args: never[]) => AxError = AxError,
): Promise<string> {
  const result = await outcome(action, type);
  if (result.ok) assert.fail("expected a failure");
  return result.message;
}

/** A running {@link RegistryServer} and a cache directory, fresh for each test. */
export interface ServedWorld {
  readonly server: RegistryServer;
  readonly cacheDir: string;
}

/**
 * Registers hooks on the enclosing suite: one server for the suite, reset before each test to
 * serve the fixtures under `/registry/` (includes rewritten to it), and a new empty cache
 * directory for each test.
 */
export function useServedWorld(): ServedWorld {
  let server: RegistryServer | undefined;
  let cache: Awaited<ReturnType<typeof tempDir>> | undefined;
  before(async () => {
    server = await startRegistryServer();
  });
  beforeEach(async () => {
    assert.ok(server);
    server.reset();
    for (const name of FIXTURE_FILES) {
      server.setFile(`/registry/${name}`, rewriteIncludes(fixture(name), server.url("/registry/")));
    }
    await cache?.cleanup();
    cache = await tempDir("axi-registry-cache-");
  });
  after(async () => {
    await server?.close();
    await cache?.cleanup();
  });
  return {
    get server() {
      assert.ok(server, "the server starts in the suite's before hook");
      return server;
    },
    get cacheDir() {
      assert.ok(cache, "the cache directory is made in the beforeEach hook");
      return cache.path;
    },
  };
}
