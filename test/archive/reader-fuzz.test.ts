/**
 * Property: whatever the bytes of an archive's headers say (random bytes written over header
 * fields of real archives, checksums made right again so that the reader believes them; sparse
 * maps, pax records, long names, sizes, types), and wherever the archive is cut, extraction either
 * succeeds or fails with a one-line AxError, in bounded time, and nothing outside the destination
 * is created or changed.
 */
import { describe, it } from "node:test";
import fc from "fast-check";
import {
  fixChecksum,
  gnuLongName,
  member,
  oldGnuSparse,
  pad,
  pax,
  stretches,
  tar,
} from "../helpers/tar.js";
import { withConfinementCheck } from "./sandbox.js";

/** Archive parts; every part opens with a header block. */
function parts(): Buffer[] {
  const { content, map } = stretches(12, 1024, 7, 10);
  const sparse10 = Buffer.concat([
    pad(Buffer.from("2\n0\n3\n9000\n3\n")),
    pad(Buffer.from("abc")),
    Buffer.from("xyz"),
  ]);
  return [
    pax({ comment: "global", mtime: "1600000000.5" }, "g"),
    member({ name: "dir/", type: "5" }),
    oldGnuSparse({ name: "dir/sparse.img", realSize: content.length, map, content }),
    pax({
      "GNU.sparse.major": "1",
      "GNU.sparse.minor": "0",
      "GNU.sparse.name": "sparse-1.0",
      "GNU.sparse.realsize": "10000",
    }),
    member({ name: "GNUSparseFile.0/sparse-1.0", data: sparse10 }),
    pax([
      ["GNU.sparse.size", "10000"],
      ["GNU.sparse.numblocks", "1"],
      ["GNU.sparse.offset", "9000"],
      ["GNU.sparse.numbytes", "3"],
      ["path", "sparse-0.0"],
    ]),
    member({ name: "placeholder", data: "xyz" }),
    gnuLongName(`long/${"n".repeat(150)}`),
    member({ name: "short", data: "long name" }),
    member({ name: "link", type: "2", linkname: "dir/sparse.img" }),
    member({ name: "././@LongLink", type: "K", data: `long/${"n".repeat(150)}\0` }),
    member({ name: "hard", type: "1", linkname: "long/n" }),
    member({ name: "v7", data: "v7", magic: "v7", type: "\0" }),
  ];
}

const BASE = parts();
/** Offsets of the header blocks that open each part, in the whole archive. */
const HEADERS = BASE.reduce<number[]>(
  (offsets, part, i) => [
    ...offsets,
    i === 0 ? 0 : (offsets[i - 1] ?? 0) + (BASE[i - 1]?.length ?? 0),
  ],
  [],
);
const ARCHIVE = tar(...BASE);

/** One change: bytes written over a header block, at an offset inside it. */
const change = fc.record({
  header: fc.nat({ max: HEADERS.length - 1 }),
  at: fc.oneof(
    fc.nat({ max: 511 }),
    fc.constantFrom(0, 100, 124, 136, 156, 157, 257, 345, 386, 398, 482, 483),
  ),
  bytes: fc.oneof(
    fc.uint8Array({ minLength: 1, maxLength: 12 }),
    fc
      .constantFrom(..."0 7 S x g L K V 5 1 2 / .. 77777777777 -1 \x80 \xff 99999999999".split(" "))
      .map((text) => Buffer.from(text, "latin1")),
  ),
  fixChecksum: fc.oneof(
    { arbitrary: fc.constant(true), weight: 4 },
    { arbitrary: fc.constant(false), weight: 1 },
  ),
});

describe("tar reader (property-based)", () => {
  it("mutated headers and cut archives never escape, crash or hang", async () => {
    await withConfinementCheck(async (check) => {
      await fc.assert(
        fc.asyncProperty(
          fc.array(change, { minLength: 1, maxLength: 4 }),
          fc.oneof(
            { arbitrary: fc.constant(undefined), weight: 3 },
            { arbitrary: fc.nat({ max: ARCHIVE.length }), weight: 1 },
          ),
          fc.constantFrom(7, 512, 4096, 65536),
          async (changes, cut, chunkSize) => {
            const archive = Buffer.from(ARCHIVE);
            for (const { header, at, bytes, fixChecksum: fix } of changes) {
              const start = HEADERS[header] ?? 0;
              Buffer.from(bytes).copy(archive, start + at, 0, 512 - at);
              if (fix) fixChecksum(archive.subarray(start, start + 512));
            }
            await check(archive.subarray(0, cut), chunkSize);
          },
        ),
        { numRuns: 150, seed: 20261202 },
      );
    });
  });
});
