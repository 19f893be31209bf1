/**
 * The body of an answer as handed to callers: a Readable over Node's `IncomingMessage` that tells
 * the {@link Watchdog} when its reader waits on the network (it asked for bytes) and when it is
 * busy (its buffer is full), so that only time spent waiting on the server counts against the
 * stall and low-speed limits. Backpressure goes through to the socket: a paused body pauses the
 * connection, and a body the server ends (close-delimited HTTP/1.0 included) ends only after the
 * reader took every byte.
 */
import type { IncomingMessage } from "node:http";
import { Readable } from "node:stream";
import type { Watchdog } from "./watchdog.js";

/** Bytes buffered ahead of the reader. */
const HIGH_WATER_MARK = 64 * 1024;
/** A discarded body up to this size is read (so its connection can be reused), else dropped. */
const MAX_DRAINED_BODY = 64 * 1024;

/** The error of a body that closed before it was complete, like Node's own `aborted`. */
function prematureClose(): Error {
  return Object.assign(new Error("connection closed before the end of the body"), {
    code: "ECONNRESET",
  });
}

/** See the module comment. Destroying it (early, or with an error) closes the connection. */
export class ResponseBody extends Readable {
  readonly #source: IncomingMessage;
  readonly #watchdog: Watchdog;
  readonly #onDone: () => void;
  #discarded = false;

  /** `onDone` runs once, when the body ended, was destroyed or was discarded. */
  constructor(source: IncomingMessage, watchdog: Watchdog, onDone: () => void) {
    super({ highWaterMark: HIGH_WATER_MARK });
    this.#source = source;
    this.#watchdog = watchdog;
    this.#onDone = onDone;
    // Errors reach readers through iteration or `pipeline`; with none attached, destroying the
    // body (or a failure nobody reads) must not become an uncaught exception.
    this.on("error", () => {});
    source.on("data", (chunk: Buffer) => {
      if (this.#discarded) return;
      watchdog.received(chunk.length);
      if (!this.push(chunk)) {
        source.pause();
        watchdog.idle();
      }
    });
    source.pause();
    source.once("end", () => {
      if (this.#discarded) return;
      this.#finish();
      this.push(null);
    });
    source.once("error", (err) => this.destroy(err));
    source.once("close", () => {
      if (!source.complete) this.destroy(prematureClose());
    });
  }

  /**
   * For an answer nobody reads (a redirect): a small body is read and dropped so that its
   * connection goes back to the pool, a larger one closes the connection.
   */
  discard(): void {
    this.#discarded = true;
    this.#finish();
    const length = Number(this.#source.headers["content-length"] ?? Infinity);
    if (length <= MAX_DRAINED_BODY) this.#source.on("error", () => {}).resume();
    else this.#source.destroy();
  }

  override _read(): void {
    this.#watchdog.waiting();
    this.#source.resume();
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    this.#finish();
    if (!this.#discarded) this.#source.destroy();
    callback(err);
  }

  #finish(): void {
    this.#watchdog.stop();
    this.#onDone();
  }
}
