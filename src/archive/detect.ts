/**
 * Picks the decoder of an archive from its first bytes (never from its name): gzip, xz, zstd or
 * plain tar, and opens it. gzip uses node:zlib; xz spawns `xz -dc`; zstd uses zlib when this Node
 * has it (>= 22.15), else spawns `zstd -dc`. The xz and zstd decoders run under a memory limit.
 *
 * A spawned decoder writes into a Unix socket that is read with `onread` straight into big chunks
 * (see {@link ChunkReader}), not through a pipe stream, which hands out a fresh 64 KiB buffer per
 * read: for a 512 MiB image that is 8,000+ reads, allocations and trips through the extractor,
 * which cost more CPU than the tar parsing itself and take it from the decompressor.
 */

import { spawn, type ChildProcess, type StdioOptions } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, rm } from "node:fs/promises";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable, type Transform } from "node:stream";
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

/** Size of the chunks a spawned decoder's output is handed out in. */
export const TOOL_CHUNK = 1024 * 1024;
/** A chunk with less room left than this is handed out: reads stay big. */
const MIN_READ = 64 * 1024;
/** Decoded bytes held ahead of the consumer before the decoder is paused: it runs ahead this far. */
const READ_AHEAD = 4 * TOOL_CHUNK;
/** A consumer waiting on a partly filled chunk gets it after this long (slow streams). */
const PARTIAL_CHUNK_MS = 20;

/**
 * The output of a spawned decoder read from a socket with `onread`: each read lands in the free
 * end of the chunk being filled (no copy, no buffer per read). What a chunk holds is handed out
 * once the chunk is full, or once the consumer has waited {@link PARTIAL_CHUNK_MS} for it (then
 * the rest of that chunk keeps filling: Node holds its free end for the next read, so only a
 * read's callback may move on to a new chunk), or at the end. Up to {@link READ_AHEAD} bytes are
 * read ahead of the consumer, then the socket is paused.
 */
class ChunkReader {
  #chunk = Buffer.allocUnsafe(TOOL_CHUNK);
  /** `#chunk[#handed, #fill)` is read but not handed out yet. */
  #handed = 0;
  #fill = 0;
  readonly #ready: Buffer[] = [];
  #readyBytes = 0;
  #ended = false;
  #failure: Error | undefined;
  #socket: net.Socket | undefined;
  #paused = false;
  #wake: (() => void) | undefined;
  #partialTimer: NodeJS.Timeout | undefined;

  /** What `net.connect` takes as `onread`: the buffer for the next read, and what to do after. */
  readonly onread = {
    buffer: () => this.#chunk.subarray(this.#fill),
    callback: (bytes: number): boolean => {
      this.#fill += bytes;
      if (this.#chunk.length - this.#fill < MIN_READ) {
        this.#handOut();
        this.#chunk = Buffer.allocUnsafe(TOOL_CHUNK);
        this.#handed = 0;
        this.#fill = 0;
      } else {
        this.#armPartialTimer();
      }
      this.#paused = this.#readyBytes >= READ_AHEAD;
      return !this.#paused;
    },
  };

  /** Reads `socket` (connected with {@link ChunkReader.onread}) until it ends. */
  attach(socket: net.Socket): void {
    this.#socket = socket;
    socket.on("end", () => {
      this.#ended = true;
      this.#handOut();
    });
    socket.on("error", (err) => {
      this.#failure = err;
      this.#notify();
    });
    socket.on("close", () => {
      this.#ended = true;
      this.#notify();
    });
  }

  /** Stops reading (the consumer is gone). */
  destroy(): void {
    this.#socket?.destroy();
  }

  /** The chunks, in order, until the socket ends; throws if it failed. */
  async *chunks(): AsyncGenerator<Buffer> {
    try {
      for (;;) {
        const chunk = this.#ready.shift();
        if (chunk !== undefined) {
          this.#readyBytes -= chunk.length;
          if (this.#paused && this.#readyBytes < READ_AHEAD) {
            this.#paused = false;
            this.#socket?.resume();
          }
          yield chunk;
          continue;
        }
        if (this.#failure) throw this.#failure;
        if (this.#ended) return;
        await new Promise<void>((resolve) => {
          this.#wake = resolve;
          this.#armPartialTimer();
        });
      }
    } finally {
      clearTimeout(this.#partialTimer);
    }
  }

  /** With the consumer waiting on bytes read but not handed out, hands them out soon. */
  #armPartialTimer(): void {
    if (this.#wake && this.#partialTimer === undefined && this.#fill > this.#handed) {
      this.#partialTimer = setTimeout(() => this.#handOut(), PARTIAL_CHUNK_MS);
    }
  }

  /** Hands out what was read into the current chunk and not handed out yet. */
  #handOut(): void {
    if (this.#fill > this.#handed) {
      this.#ready.push(this.#chunk.subarray(this.#handed, this.#fill));
      this.#readyBytes += this.#fill - this.#handed;
      this.#handed = this.#fill;
    }
    this.#notify();
  }

  #notify(): void {
    clearTimeout(this.#partialTimer);
    this.#partialTimer = undefined;
    this.#wake?.();
    this.#wake = undefined;
  }
}

/**
 * A connected pair of Unix sockets, made through a listening socket in a fresh private directory
 * (removed at once): `ours` reads with `reader`, `theirs` is for the child's stdout.
 */
async function socketPair(reader: ChunkReader): Promise<{ ours: net.Socket; theirs: net.Socket }> {
  const dir = await mkdtemp(join(tmpdir(), "axvisor-image-"));
  const server = net.createServer();
  try {
    const path = join(dir, "out");
    server.listen(path);
    await once(server, "listening");
    const accepted = once(server, "connection") as Promise<[net.Socket]>;
    const ours = net.connect({ path, onread: reader.onread });
    try {
      await once(ours, "connect");
      const [theirs] = await accepted;
      return { ours, theirs };
    } catch (err) {
      ours.destroy();
      throw err;
    }
  } finally {
    server.close();
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * A decoder run as a child process (`command args`, bytes on stdin and stdout); `memoryRefusal`
 * tells its (C locale) message for a stream refused by its memory limit. Its stdout is a socket
 * read by a {@link ChunkReader}; where no socket can be made (no writable temporary directory), a
 * plain pipe.
 */
function toolDecoder(
  format: string,
  command: string,
  args: string[],
  pkg: string,
  memoryRefusal: RegExp,
): Decoder {
  const reader = new ChunkReader();
  let child: ChildProcess | undefined;
  let destroyed = false;
  const start = (stdio: StdioOptions): ChildProcess => {
    child = spawn(command, args, {
      stdio,
      env: { ...process.env, LC_ALL: "C" }, // messages in English, to be recognized
    });
    if (destroyed) child.kill();
    return child;
  };
  const started = socketPair(reader).then(
    ({ ours, theirs }) => {
      reader.attach(ours);
      try {
        return start(["pipe", theirs, "pipe"]);
      } finally {
        theirs.destroy(); // the child has its own copy: the end is seen when the child closes it
      }
    },
    () => start(["pipe", "pipe", "pipe"]),
  );
  const exited = started.then(
    (c) =>
      new Promise<void>((resolve, reject) => {
        let stderr = "";
        c.stderr!.setEncoding("utf8").on("data", (text: string) => {
          if (stderr.length < 4096) stderr += text;
        });
        c.stdin!.on("error", () => {}); // EPIPE when the tool stops early: its exit status says why
        c.stdout?.on("error", () => {});
        c.once("error", (err) => {
          reject(
            hasCode(err, "ENOENT")
              ? new AxError(
                  `the archive is ${format}-compressed, but \`${command}\` is not installed`,
                  { hint: `install it (Debian/Ubuntu: apt-get install ${pkg}) and try again` },
                )
              : new AxError(`cannot run \`${command}\` to decompress the archive: ${err.message}`),
          );
        });
        c.once("close", (code, signal) => {
          if (code === 0) return resolve();
          if (memoryRefusal.test(stderr)) return reject(tooMuchMemory(format));
          const reason =
            stderr.trim().split("\n")[0] || `\`${command}\` exited with ${code ?? signal}`;
          reject(new AxError(`the archive's ${format} data is corrupt or truncated: ${reason}`));
        });
      }),
  );
  exited.catch(() => {}); // observed by output()
  // Writes wait for the child to take the bytes; they are dropped once it is gone (its exit
  // status, seen by output(), says why).
  const input = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      started.then(
        (c) => (c.stdin!.writable ? c.stdin!.write(chunk, () => callback()) : callback()),
        () => callback(),
      );
    },
    final(callback) {
      started.then(
        (c) => (c.stdin!.writable ? c.stdin!.end(() => callback()) : callback()),
        () => callback(),
      );
    },
  });
  return {
    input,
    async *output() {
      const c = await started;
      try {
        yield* c.stdout ? pipeChunks(c.stdout) : reader.chunks();
      } catch {
        // the exit status below explains what went wrong
      }
      await exited;
    },
    destroy() {
      destroyed = true;
      input.destroy();
      reader.destroy();
      if (child) {
        child.stdin?.destroy();
        child.stdout?.destroy();
        if (child.exitCode === null) child.kill();
      }
    },
  };
}

/** The chunks of a pipe, as they come. */
async function* pipeChunks(stream: AsyncIterable<unknown>): AsyncGenerator<Buffer> {
  for await (const chunk of stream) yield chunk as Buffer;
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
