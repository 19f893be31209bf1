/**
 * The hand-over point between code that pushes chunks (the extractor's write(), for an archive
 * that needs no decoder) and the tar reader that pulls them: one chunk at a time, and a push
 * resolves once its chunk was taken, so memory stays at a chunk or two.
 */

type Waiter = {
  resolve: (result: IteratorResult<Buffer>) => void;
  reject: (err: unknown) => void;
};

/** Chunks handed from a writer to one asynchronous reader. */
export class ChunkQueue implements AsyncIterable<Buffer> {
  #chunk: Buffer | undefined;
  #taken: (() => void) | undefined;
  #waiter: Waiter | undefined;
  #ended = false;
  #failure: { error: unknown } | undefined;

  /** Hands `chunk` over; resolves once the reader took it (or the queue failed). */
  push(chunk: Buffer): Promise<void> {
    const waiter = this.#waiter;
    if (waiter) {
      this.#waiter = undefined;
      waiter.resolve({ value: chunk, done: false });
      return Promise.resolve();
    }
    this.#chunk = chunk;
    return new Promise((resolve) => {
      this.#taken = resolve;
    });
  }

  /** No more chunks: the reader sees the end once it took the last one. */
  end(): void {
    this.#ended = true;
    const waiter = this.#waiter;
    this.#waiter = undefined;
    waiter?.resolve({ value: undefined, done: true }); // a waiting reader has taken every chunk
  }

  /** Stops: the reader's pending and later calls reject with `error`. */
  fail(error: unknown): void {
    this.#failure ??= { error };
    this.#chunk = undefined;
    this.#taken?.();
    this.#taken = undefined;
    const waiter = this.#waiter;
    this.#waiter = undefined;
    waiter?.reject(error);
  }

  /** Iterates over the chunks, for the reader. */
  [Symbol.asyncIterator](): AsyncIterator<Buffer> {
    return { next: () => this.#next() };
  }

  #next(): Promise<IteratorResult<Buffer>> {
    if (this.#failure) return Promise.reject(this.#failure.error);
    const chunk = this.#chunk;
    if (chunk !== undefined) {
      this.#chunk = undefined;
      this.#taken?.();
      this.#taken = undefined;
      return Promise.resolve({ value: chunk, done: false });
    }
    if (this.#ended) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve, reject) => {
      this.#waiter = { resolve, reject };
    });
  }
}
