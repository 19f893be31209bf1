/**
 * HoleWriter: whatever the chunking (tiny chunks, chunks bigger than its buffers, sparse seeks),
 * the file holds exactly the bytes written, and zero blocks take no space.
 */

import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import fc from "fast-check";
import { HOLE_BLOCK, HoleWriter, WRITE_BUFFER } from "../../src/archive/hole-writer.js";

let dir: string;
before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "axi-holes-"));
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

const lent = (): [Buffer, Buffer] => [
  Buffer.allocUnsafe(WRITE_BUFFER),
  Buffer.allocUnsafe(WRITE_BUFFER),
];

/** A stretch of the file: zeros, or bytes that are not (each byte 1-255, so never a zero block). */
const stretch = fc.record({
  zero: fc.boolean(),
  length: fc.oneof(fc.integer({ min: 1, max: 3 * HOLE_BLOCK }), fc.constant(HOLE_BLOCK)),
  fill: fc.integer({ min: 1, max: 255 }),
});

/** Where the content is cut into chunks (sizes cycled): tiny, odd and bigger than a write buffer. */
const chunking = fc.array(
  fc.oneof(
    fc.integer({ min: 1, max: 600 }),
    fc.integer({ min: 1, max: 200_000 }),
    fc.constant(WRITE_BUFFER + 3),
  ),
  { minLength: 1, maxLength: 8 },
);

function contentOf(stretches: { zero: boolean; length: number; fill: number }[]): Buffer {
  return Buffer.concat(
    stretches.map((s) => (s.zero ? Buffer.alloc(s.length) : Buffer.alloc(s.length, s.fill))),
  );
}

/** Non-zero HOLE_BLOCK-aligned blocks of `content` placed at `offset`: what must be stored. */
function dataBlocks(content: Buffer, offset: number): number {
  const blocks = new Set<number>();
  for (let i = 0; i < content.length; i++) {
    if (content[i] !== 0) blocks.add(Math.floor((offset + i) / HOLE_BLOCK));
  }
  return blocks.size;
}

async function writeFile(
  file: string,
  segments: { offset: number; content: Buffer }[],
  sizes: number[],
  size: number,
): Promise<void> {
  const fd = fs.openSync(file, "w+");
  try {
    const writer = new HoleWriter(fd, lent());
    let next = 0;
    for (const { offset, content } of segments) {
      await writer.seek(offset);
      for (let at = 0; at < content.length;) {
        const n = sizes[next++ % sizes.length]!;
        await writer.write(content.subarray(at, at + n));
        at += n;
      }
    }
    await writer.finish(size);
  } finally {
    fs.closeSync(fd);
  }
}

describe("HoleWriter", () => {
  test("any content, any chunking: the same bytes, zero blocks left as holes", async () => {
    // (Blocks are counted from the first byte written, here at a block boundary of the file.)
    await fc.assert(
      fc.asyncProperty(
        fc.array(stretch, { minLength: 1, maxLength: 12 }),
        chunking,
        fc.integer({ min: 0, max: 2 }).map((blocks) => blocks * HOLE_BLOCK),
        async (stretches, sizes, lead) => {
          const content = contentOf(stretches);
          const file = path.join(dir, "plain");
          await writeFile(file, [{ offset: lead, content }], sizes, lead + content.length);
          const got = fs.readFileSync(file);
          assert.equal(got.length, lead + content.length);
          assert.ok(got.subarray(0, lead).equals(Buffer.alloc(lead)));
          assert.ok(got.subarray(lead).equals(content), "the bytes differ");
          const allowed = (dataBlocks(content, lead) * HOLE_BLOCK) / 512;
          const { blocks } = fs.statSync(file);
          assert.ok(blocks <= allowed, `${blocks} blocks stored, at most ${allowed} expected`);
        },
      ),
      { numRuns: 60 },
    );
  });

  test("sparse segments (seeks forward to any offset) come out at their offsets", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.record({
            gap: fc.integer({ min: 0, max: 3 * HOLE_BLOCK }),
            stretches: fc.array(stretch, { minLength: 1, maxLength: 4 }),
          }),
          { minLength: 1, maxLength: 5 },
        ),
        chunking,
        fc.integer({ min: 0, max: HOLE_BLOCK }),
        async (parts, sizes, tail) => {
          const segments: { offset: number; content: Buffer }[] = [];
          let offset = 0;
          for (const part of parts) {
            offset += part.gap;
            const content = contentOf(part.stretches);
            segments.push({ offset, content });
            offset += content.length;
          }
          const size = offset + tail;
          const file = path.join(dir, "sparse");
          await writeFile(file, segments, sizes, size);
          const want = Buffer.alloc(size);
          for (const s of segments) s.content.copy(want, s.offset);
          assert.ok(fs.readFileSync(file).equals(want), "the bytes differ");
        },
      ),
      { numRuns: 60 },
    );
  });

  test("a failed write rejects, and settle() then resolves", async () => {
    const file = path.join(dir, "read-only");
    fs.writeFileSync(file, "");
    const fd = fs.openSync(file, "r");
    try {
      const writer = new HoleWriter(fd, lent());
      const data = Buffer.alloc(3 * WRITE_BUFFER, 7);
      await assert.rejects(
        (async () => {
          await writer.write(data);
          await writer.finish(data.length);
        })(),
        { code: "EBADF" },
      );
      await writer.settle();
    } finally {
      fs.closeSync(fd);
    }
  });
});
