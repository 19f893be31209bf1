/**
 * The spawned decoders (xz, and zstd where Node has no zstd of its own): their output, read through
 * a socket into big chunks, is exactly the decompressed bytes whatever the pace on either side
 * (input trickling in, a consumer slower than the decoder), and a decoder stopped midway goes away.
 */

import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { describe, test } from "node:test";
import { openDecoder, TOOL_CHUNK, type Decoder } from "../../src/archive/detect.js";

const have = (tool: string) => spawnSync(tool, ["--version"]).status === 0;

/** Writes `data` to the decoder in `piece`-byte writes, `pauseMs` apart, then ends it. */
async function feed(decoder: Decoder, data: Buffer, piece: number, pauseMs: number) {
  for (let at = 0; at < data.length; at += piece) {
    if (!decoder.input.write(data.subarray(at, at + piece))) {
      await new Promise((resolve) => decoder.input.once("drain", resolve));
    }
    if (pauseMs > 0) await sleep(pauseMs);
  }
  decoder.input.end();
}

/** Everything the decoder outputs, taking `consumeMs` per chunk. */
async function drain(decoder: Decoder, consumeMs = 0): Promise<{ data: Buffer; chunks: number }> {
  const chunks: Buffer[] = [];
  for await (const chunk of decoder.output()) {
    chunks.push(Buffer.from(chunk)); // a copy: what was handed out must never change afterwards
    if (consumeMs > 0) await sleep(consumeMs);
  }
  return { data: Buffer.concat(chunks), chunks: chunks.length };
}

/** `n` bytes that compress a little (so output follows input closely). */
function payload(n: number): Buffer {
  const data = randomBytes(n);
  for (let i = 0; i < n; i += 3) data[i] = 0x41;
  return data;
}

const tools = [
  {
    format: "xz" as const,
    compress: (d: Buffer) => execFileSync("xz", ["-c", "-1"], { input: d, maxBuffer: 1 << 30 }),
  },
  {
    format: "zstd" as const,
    compress: (d: Buffer) => execFileSync("zstd", ["-c", "-q"], { input: d, maxBuffer: 1 << 30 }),
  },
];

describe("spawned decoders", () => {
  for (const { format, compress } of tools) {
    const skip = !have(format === "xz" ? "xz" : "zstd") && `${format} is not installed`;

    test(`${format}: input trickling in, with pauses, comes out whole`, { skip }, async () => {
      const data = payload(600 * 1024);
      const decoder = openDecoder(format);
      const [out] = await Promise.all([drain(decoder), feed(decoder, compress(data), 8192, 25)]);
      assert.ok(out.data.equals(data), "the output differs from the input");
    });

    test(`${format}: a consumer slower than the decoder gets every byte`, { skip }, async () => {
      const data = payload(6 * TOOL_CHUNK);
      const decoder = openDecoder(format);
      const [out] = await Promise.all([
        drain(decoder, 15),
        feed(decoder, compress(data), 65536, 0),
      ]);
      assert.ok(out.data.equals(data), "the output differs from the input");
      assert.ok(out.chunks <= 20, `${out.chunks} chunks: the output should come in big chunks`);
    });

    test(`${format}: without a usable temporary directory, a pipe does`, { skip }, async (t) => {
      const saved = process.env["TMPDIR"];
      process.env["TMPDIR"] = "/nonexistent/axvisor-image-test";
      t.after(() => {
        if (saved === undefined) delete process.env["TMPDIR"];
        else process.env["TMPDIR"] = saved;
      });
      const data = payload(300 * 1024);
      const decoder = openDecoder(format);
      const [out] = await Promise.all([drain(decoder), feed(decoder, compress(data), 65536, 0)]);
      assert.ok(out.data.equals(data), "the output differs from the input");
    });

    test(
      `${format}: destroyed midway, the output ends and nothing is left running`,
      { skip },
      async () => {
        const decoder = openDecoder(format);
        const compressed = compress(payload(4 * TOOL_CHUNK));
        decoder.input.write(compressed.subarray(0, compressed.length >> 1));
        const iterator = decoder.output()[Symbol.asyncIterator]();
        await iterator.next();
        decoder.destroy();
        await assert.rejects(async () => {
          for (;;) if ((await iterator.next()).done) break;
        }, /corrupt or truncated/);
      },
    );
  }
});
