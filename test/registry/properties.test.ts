/** Property-based tests (fast-check) of specs, the store's images.toml, and merging. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { parseRegistry, serializeImages } from "../../src/registry/format.js";
import { mergeImages, type ImageSource } from "../../src/registry/merge.js";
import { formatSpec, parseSpec } from "../../src/registry/resolve.js";
import type { ImageEntry } from "../../src/registry/types.js";

const nameArb = fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._+-]{0,24}$/);
const hexArb = fc
  .uint8Array({ minLength: 32, maxLength: 32 })
  .map((bytes) => Buffer.from(bytes).toString("hex"));
const urlArb = fc.oneof(
  fc.webUrl(),
  nameArb.map((n) => `oci://ghcr.io/arceos/${n.toLowerCase()}:latest`),
  nameArb.map((n) => `file:///srv/images/${n}.tar.gz`),
);
const releasedAtArb = fc.option(
  fc.oneof(
    fc
      .date({ min: new Date(0), max: new Date(Date.UTC(2100, 0)), noInvalidDate: true })
      .map((d) => d.toISOString()),
    fc.constantFrom("2026-04-10T02:35:51Z", "2026-04-10 02:35:51.5+02:00", "1999-12-31t23:59:60z"),
  ),
  { nil: undefined },
);

const imageArb: fc.Arbitrary<ImageEntry> = fc
  .record({
    name: nameArb,
    version: nameArb,
    description: fc.string({ unit: "binary", maxLength: 40 }),
    sha256: hexArb,
    arch: fc.constantFrom("aarch64", "riscv64", "x86_64", "loongarch64"),
    url: urlArb,
    released_at: releasedAtArb,
  })
  .map(({ released_at, ...rest }) => (released_at === undefined ? rest : { ...rest, released_at }));

function byNameVersion(a: ImageEntry, b: ImageEntry): number {
  if (a.name !== b.name) return a.name < b.name ? -1 : 1;
  if (a.version !== b.version) return a.version < b.version ? -1 : 1;
  return 0;
}

describe("parseSpec / formatSpec", () => {
  it("round-trip every valid spec", () => {
    const specArb = fc.record({ name: nameArb, version: fc.option(nameArb, { nil: undefined }) });
    fc.assert(
      fc.property(specArb, ({ name, version }) => {
        const spec = version === undefined ? { name } : { name, version };
        assert.deepEqual(parseSpec(formatSpec(spec)), spec);
      }),
    );
  });
});

describe("serializeImages / parseRegistry", () => {
  it("read back what was written, sorted by (name, version), with either reader", () => {
    fc.assert(
      fc.property(fc.array(imageArb, { maxLength: 12 }), (images) => {
        const text = serializeImages(images);
        const expected = [...images].sort(byNameVersion);
        assert.deepEqual(parseRegistry(text, "images.toml").images, expected);
        assert.deepEqual(parseRegistry(text, "images.toml", { trusted: true }).images, expected);
        assert.equal(serializeImages(expected), text);
      }),
      { numRuns: 200 },
    );
  });
});

describe("mergeImages", () => {
  // Small pools, so that keys repeat and contents conflict often.
  const pooledImageArb = fc
    .record({
      name: fc.constantFrom("a", "b", "c"),
      version: fc.constantFrom("1", "2"),
      arch: fc.constantFrom("aarch64", "riscv64"),
    })
    .map(({ name, version, arch }): ImageEntry => ({
      name,
      version,
      arch,
      description: "",
      sha256: "0".repeat(64),
      url: `https://x/${name}.tar.gz`,
    }));
  const sourcesArb = fc.array(
    fc.record({ source: fc.constantFrom("r1", "r2", "r3"), images: fc.array(pooledImageArb) }),
    { maxLength: 5 },
  );
  const keyOf = (i: ImageEntry) => `${i.name}:${i.version}`;

  it("keeps the first entry of each key, no duplicates, and warns once per conflict", () => {
    fc.assert(
      fc.property(sourcesArb, (sources: ImageSource[]) => {
        const all = sources.flatMap((s) => s.images);
        const { images, warnings } = mergeImages(sources);
        assert.equal(new Set(images.map(keyOf)).size, images.length);
        for (const image of images)
          assert.equal(
            image,
            all.find((i) => keyOf(i) === keyOf(image)),
          );
        const conflicts = all.filter((i) => {
          const first = all.find((j) => keyOf(j) === keyOf(i));
          return first !== undefined && first.arch !== i.arch;
        });
        assert.equal(warnings.length, conflicts.length);
      }),
    );
  });

  it("gives the same set of keys whatever the order of the sources", () => {
    fc.assert(
      fc.property(
        sourcesArb.chain((sources) =>
          fc.tuple(
            fc.constant(sources),
            fc.shuffledSubarray(sources, { minLength: sources.length }),
          ),
        ),
        ([sources, shuffled]) => {
          const keys = (s: ImageSource[]) => mergeImages(s).images.map(keyOf).sort();
          assert.deepEqual(keys(shuffled), keys(sources));
        },
      ),
    );
  });
});
