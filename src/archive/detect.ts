/**
 * Picks the decoder of an archive from its first bytes (never from its name): gzip, xz, zstd or
 * plain tar, and opens it. gzip uses node:zlib; xz spawns `xz -dc`; zstd uses zlib when this Node
 * has it (>= 22.15), else spawns `zstd -dc`.
 */

import { spawn } from "node:child_process";
import type { Transform, Writable } from "node:stream";
import zlib from "node:zlib";
import { AxError, hasCode } from "../errors.js";

/** The compression of an archive, as told by its magic bytes. */
export type ArchiveFormat = "gzip" | "xz" | "zstd" | "tar";

/** How many leading bytes {@link detectFormat} needs. */
export const MAGIC_LENGTH = 6;

const MAGICS: [Exclude<ArchiveFormat, "tar">, number[]][] = [
  ["gzip", [0x1f, 0x8b]],
  ["xz", [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]],
  ["zstd", [0x28, 0xb5, 0x2f, 0xfd]],
];

/** The format whose magic bytes open `head`; `tar` when none does. */
export function detectFormat(head: Buffer): ArchiveFormat {
  for (const [format, magic] of MAGICS) {
    if (magic.every((byte, i) => head[i] === byte)) return format;
  }
  return "tar";
}

/** A running decompressor. */
export interface Decoder {
  /** Compressed bytes go in here (mind its backpressure). */
  readonly input: Writable;
  /** The decompressed bytes; throws an {@link AxError} on corrupt data or a failed tool. */
  output(): AsyncGenerator<Buffer>;
  /** Stops now (after a failure elsewhere). */
  destroy(): void;
}

/** Size of the decompressed chunks: big enough to keep per-chunk overhead low. */
const CHUNK = 512 * 1024;

function zlibDecoder(format: string, stream: Transform): Decoder {
  stream.on("error", () => {}); // seen by output()
  return {
    input: stream,
    async *output() {
      try {
        for await (const chunk of stream) yield chunk as Buffer;
      } catch (err) {
        const detail = err instanceof Error ? err.message : String(err);
        throw new AxError(`the archive's ${format} data is corrupt or truncated: ${detail}`, {
          cause: err,
        });
      }
    },
    destroy: () => stream.destroy(),
  };
}

function toolDecoder(format: string, command: string, args: string[], pkg: string): Decoder {
  const child = spawn(command, args, { stdio: ["pipe", "pipe", "pipe"] });
  let stderr = "";
  child.stderr.setEncoding("utf8").on("data", (text: string) => {
    if (stderr.length < 4096) stderr += text;
  });
  child.stdin.on("error", () => {}); // EPIPE when the tool stops early: its exit status says why
  child.stdout.on("error", () => {});
  const exited = new Promise<void>((resolve, reject) => {
    child.once("error", (err) => {
      reject(
        hasCode(err, "ENOENT")
          ? new AxError(
              `the archive is ${format}-compressed, but \`${command}\` is not installed`,
              {
                hint: `install it (Debian/Ubuntu: apt-get install ${pkg}) and try again`,
              },
            )
          : new AxError(`cannot run \`${command}\` to decompress the archive: ${err.message}`),
      );
    });
    child.once("close", (code, signal) => {
      if (code === 0) return resolve();
      const reason = stderr.trim().split("\n")[0] || `\`${command}\` exited with ${code ?? signal}`;
      reject(new AxError(`the archive's ${format} data is corrupt or truncated: ${reason}`));
    });
  });
  exited.catch(() => {}); // observed by output()
  return {
    input: child.stdin,
    async *output() {
      try {
        for await (const chunk of child.stdout) yield chunk as Buffer;
      } catch {
        // the exit status below explains what went wrong
      }
      await exited;
    },
    destroy() {
      child.stdin.destroy();
      child.stdout.destroy();
      if (child.exitCode === null) child.kill();
    },
  };
}

type ZstdFactory = (options?: zlib.ZlibOptions) => Transform;

/** Starts the decoder for `format` (not `tar`, which needs none). */
export function openDecoder(format: Exclude<ArchiveFormat, "tar">): Decoder {
  switch (format) {
    case "gzip":
      return zlibDecoder("gzip", zlib.createGunzip({ chunkSize: CHUNK }));
    case "xz":
      return toolDecoder("xz", "xz", ["-dc", "-T0"], "xz-utils");
    case "zstd": {
      const createZstd = (zlib as unknown as { createZstdDecompress?: ZstdFactory })
        .createZstdDecompress;
      return createZstd
        ? zlibDecoder("zstd", createZstd({ chunkSize: CHUNK }))
        : toolDecoder("zstd", "zstd", ["-dcq"], "zstd");
    }
  }
}
