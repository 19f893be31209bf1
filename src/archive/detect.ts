/**
 * Picks the decoder of an archive from its first bytes (never from its name): gzip, xz, zstd or
 * plain tar, and opens it. gzip uses node:zlib; xz spawns `xz -dc`; zstd uses zlib when this Node
 * has it (>= 22.15), else spawns `zstd -dc`. The xz and zstd decoders run under a memory limit.
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

/**
 * Memory an xz or zstd decoder may use, in MiB. The largest xz presets (`-9`, `-9e`, which TGOS
 * archives use) need 65 MiB (a 64 MiB dictionary); 128 MiB is also zstd's own default window
 * limit, made explicit here. A header that asks for more (a 1 GiB xz dictionary, a 1 GiB zstd
 * window) is refused before the memory is taken. With `-T0`, xz keeps its threads within it.
 */
export const DECODER_MEMORY_LIMIT_MIB = 128;

const ZSTD_WINDOW_LOG_MAX = Math.log2(DECODER_MEMORY_LIMIT_MIB) + 20;

/** The error for an archive whose decoder would need more than the limit. */
function tooMuchMemory(format: string): AxError {
  return new AxError(
    `the archive's ${format} data needs more than ${DECODER_MEMORY_LIMIT_MIB} MiB of memory to ` +
      "decompress; refused",
    {
      hint:
        "archives made with `xz -9e` or `zstd -19` need at most 65 MiB: this one was made with " +
        "a larger dictionary or window (ask its publisher to re-compress it), or is malicious",
    },
  );
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
        if (hasCode(err, "ZSTD_error_frameParameter_windowTooLarge")) throw tooMuchMemory(format);
        const detail = err instanceof Error ? err.message : String(err);
        throw new AxError(`the archive's ${format} data is corrupt or truncated: ${detail}`, {
          cause: err,
        });
      }
    },
    destroy: () => stream.destroy(),
  };
}

/**
 * A decoder run as a child process (`command args`, bytes on stdin and stdout); `memoryRefusal`
 * tells its (C locale) message for a stream refused by its memory limit.
 */
function toolDecoder(
  format: string,
  command: string,
  args: string[],
  pkg: string,
  memoryRefusal: RegExp,
): Decoder {
  const child = spawn(command, args, {
    stdio: ["pipe", "pipe", "pipe"],
    env: { ...process.env, LC_ALL: "C" }, // messages in English, to be recognized
  });
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
      if (memoryRefusal.test(stderr)) return reject(tooMuchMemory(format));
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

/** Node >= 22.15's zstd decoder and its window parameter (not in this project's @types/node). */
type ZstdFactory = (options?: { chunkSize?: number; params?: Record<number, number> }) => Transform;

/** Starts the decoder for `format` (not `tar`, which needs none). */
export function openDecoder(format: Exclude<ArchiveFormat, "tar">): Decoder {
  switch (format) {
    case "gzip":
      return zlibDecoder("gzip", zlib.createGunzip({ chunkSize: CHUNK }));
    case "xz":
      return toolDecoder(
        "xz",
        "xz",
        ["-dc", "-T0", `--memlimit-decompress=${DECODER_MEMORY_LIMIT_MIB}MiB`],
        "xz-utils",
        /Memory usage limit reached/,
      );
    case "zstd": {
      const createZstd = (zlib as unknown as { createZstdDecompress?: ZstdFactory })
        .createZstdDecompress;
      if (createZstd) {
        const windowLogMax = (zlib.constants as unknown as Record<string, number>)
          .ZSTD_d_windowLogMax as number;
        const params = { [windowLogMax]: ZSTD_WINDOW_LOG_MAX };
        return zlibDecoder("zstd", createZstd({ chunkSize: CHUNK, params }));
      }
      return toolDecoder(
        "zstd",
        "zstd",
        ["-dcq", `--memory=${DECODER_MEMORY_LIMIT_MIB}MiB`],
        "zstd",
        /Frame requires too much memory/,
      );
    }
  }
}
