/**
 * Bounded fuzzing of parseRegistry and loadRegistry: random bytes, random TOML documents and
 * mutated real files. Every run either succeeds with valid entries or fails with a one-line
 * AxError; never another exception, never a hang (each test has a time limit).
 */
import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import fc from "fast-check";
import { stringify } from "smol-toml";
import { CANONICAL_IMAGE_KEYS } from "../../src/registry/canonical.js";
import { parseRegistry } from "../../src/registry/format.js";
import { loadRegistry } from "../../src/registry/load.js";
import { NAME_PATTERN } from "../../src/registry/rules.js";
import type { RegistryFile } from "../../src/registry/types.js";
import { tempDir } from "../helpers/images.js";
import { startRegistryServer, type RegistryServer } from "./registry-server.js";
import { fixture, outcome } from "./support.js";

const TIME_LIMIT = { timeout: 30_000 };

/** Runs `action`; passes when it returns valid entries or throws a one-line AxError. */
async function expectCleanOutcome(action: () => Partial<RegistryFile> | Promise<unknown>) {
  const result = await outcome(action);
  for (const image of result.ok ? ((result.value as Partial<RegistryFile>).images ?? []) : []) {
    assert.match(image.name, NAME_PATTERN);
    assert.match(image.version, NAME_PATTERN);
    assert.match(image.sha256, /^[0-9a-f]{64}$/);
  }
}

const fieldKeyArb = fc.constantFrom(
  ...CANONICAL_IMAGE_KEYS,
  "includes",
  "images",
  "__proto__",
  "constructor",
  "x",
);
const stringValueArb = fc.oneof(
  fc.string({ unit: "binary", maxLength: 12 }),
  fc.constantFrom(
    "linux",
    "..",
    "a/b",
    "0".repeat(64),
    "F".repeat(64),
    "https://x/a.tar.gz",
    "oci://r/a:1",
    "ftp://x",
    "2026-04-10T02:35:51Z",
    "2026-02-29T00:00:00Z",
    "2024-02-29T24:00:00+25:00",
    "v1.toml",
    "file:///etc/passwd",
  ),
);
const { value: tomlValueArb } = fc.letrec<{ value: unknown }>((tie) => ({
  value: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    stringValueArb,
    fc.integer(),
    fc.boolean(),
    fc.double({ noNaN: true }),
    fc.date({ noInvalidDate: true, min: new Date(0), max: new Date(Date.UTC(3000, 0)) }),
    fc.array(tie("value"), { maxLength: 3 }),
    fc.dictionary(fieldKeyArb, tie("value"), { maxKeys: 4 }),
  ),
}));
/** Mostly valid image tables: each field is usually right, sometimes missing or random. */
const VALID_IMAGE: Record<string, string> = {
  name: "linux",
  version: "0.0.1",
  description: "Linux guest",
  sha256: "0".repeat(64),
  arch: "aarch64",
  url: "https://x/a.tar.gz",
  released_at: "2026-04-10T02:35:51Z",
};
const imageTableArb = fc
  .tuple(
    fc.record(
      Object.fromEntries(
        Object.entries(VALID_IMAGE).map(([key, valid]) => [
          key,
          fc.oneof(
            { weight: 12, arbitrary: fc.constant<unknown>(valid) },
            { weight: 1, arbitrary: fc.constant(undefined) },
            { weight: 1, arbitrary: stringValueArb },
            { weight: 1, arbitrary: tomlValueArb },
          ),
        ]),
      ),
    ),
    fc.dictionary(fieldKeyArb, tomlValueArb, { maxKeys: 1 }),
  )
  .map(([fields, extra]) =>
    Object.fromEntries(Object.entries({ ...extra, ...fields }).filter(([, v]) => v !== undefined)),
  );
const documentArb = fc
  .record(
    {
      images: fc.array(imageTableArb, { maxLength: 3 }),
      includes: fc.array(
        fc.oneof(
          { weight: 4, arbitrary: fc.record({ url: stringValueArb }) },
          { weight: 1, arbitrary: fc.dictionary(fieldKeyArb, stringValueArb, { maxKeys: 2 }) },
        ),
        { maxLength: 2 },
      ),
      extra: fc.dictionary(fieldKeyArb, tomlValueArb, { maxKeys: 2 }),
    },
    { requiredKeys: [] },
  )
  .map(({ extra, ...tables }) => ({ ...extra, ...tables }));

/** The text with a few random cuts, insertions and replacements. */
const mutatedArb = (text: string) =>
  fc
    .array(
      fc.record({
        at: fc.nat({ max: text.length }),
        cut: fc.nat({ max: 8 }),
        insert: fc.string({ unit: "binary", maxLength: 4 }),
      }),
      { minLength: 1, maxLength: 4 },
    )
    .map((edits) =>
      edits.reduce((t, e) => t.slice(0, e.at) + e.insert + t.slice(e.at + e.cut), text),
    );

describe("parseRegistry fuzzing", () => {
  it("random text", TIME_LIMIT, async () => {
    await fc.assert(
      fc.asyncProperty(fc.string({ unit: "binary", maxLength: 200 }), (text) =>
        expectCleanOutcome(() => parseRegistry(text, "fuzz.toml")),
      ),
      { numRuns: 300 },
    );
  });

  it("random bytes decoded as UTF-8", TIME_LIMIT, async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 200 }), (bytes) =>
        expectCleanOutcome(() => parseRegistry(Buffer.from(bytes).toString("utf8"), "f.toml")),
      ),
      { numRuns: 300 },
    );
  });

  it("random TOML documents, read plainly and as trusted", TIME_LIMIT, async () => {
    await fc.assert(
      fc.asyncProperty(documentArb, fc.boolean(), async (document, trusted) => {
        const text = stringify(document);
        await expectCleanOutcome(() => parseRegistry(text, "doc.toml", { trusted }));
      }),
      { numRuns: 300 },
    );
  });

  it("mutated real registry files", TIME_LIMIT, async () => {
    const text = fixture("v0.0.26.toml");
    await fc.assert(
      fc.asyncProperty(mutatedArb(text), fc.boolean(), (mutated, trusted) =>
        expectCleanOutcome(() => parseRegistry(mutated, "v0.0.26.toml", { trusted })),
      ),
      { numRuns: 300 },
    );
  });
});

describe("loadRegistry fuzzing", () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let server: RegistryServer;
  before(async () => {
    dir = await tempDir("axi-fuzz-");
    server = await startRegistryServer();
  });
  after(async () => {
    await server.close();
    await dir.cleanup();
  });

  it("random bytes as a local file and over HTTP", TIME_LIMIT, async () => {
    const path = join(dir.path, "root.toml");
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 300 }), async (bytes) => {
        await writeFile(path, bytes);
        server.setFile("/root.toml", Buffer.from(bytes));
        await expectCleanOutcome(() => loadRegistry(path));
        await expectCleanOutcome(() => loadRegistry(server.url("/root.toml")));
      }),
      { numRuns: 60 },
    );
  });

  it("random TOML documents with includes between them", TIME_LIMIT, async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(documentArb, { minLength: 1, maxLength: 3 }), async (docs) => {
        docs.forEach((doc, i) => server.setFile(`/d/v${i}.toml`, stringify(doc)));
        server.setFile(
          "/d/root.toml",
          docs.map((_, i) => `[[includes]]\nurl = "v${i}.toml"\n`).join(""),
        );
        await expectCleanOutcome(() =>
          loadRegistry(server.url("/d/root.toml"), { http: { retries: 0 } }),
        );
      }),
      { numRuns: 60 },
    );
  });
});
