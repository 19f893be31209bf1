/**
 * The `file://` source: a local file, always read from byte 0 (a local copy needs no resume) and
 * never more than the size it had when it was opened, so that a file growing while it is read
 * cannot fill the disk. Only regular files: a FIFO or a device would be read forever.
 */
import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import { Readable } from "node:stream";
import { fileURLToPath } from "node:url";
import { toTransferError, TransferError } from "./http.js";
import type { OpenRequest, Source, SourceAnswer } from "./sources.js";

/** The local file `url` (a `file:` URL) as a {@link Source}. */
export function fileSource(url: string): Source {
  return {
    name: url,
    async open(request: OpenRequest): Promise<SourceAnswer> {
      let path: string;
      let size: number;
      try {
        path = fileURLToPath(url);
        const st = await stat(path);
        size = st.size;
        if (!st.isFile()) {
          throw new TransferError(url, "not a regular file", { retryable: false });
        }
      } catch (err) {
        if (err instanceof TransferError) throw err;
        throw toTransferError(err, url, request.signal);
      }
      const body =
        size === 0 ? Readable.from([]) : createReadStream(path, { start: 0, end: size - 1 });
      return { kind: "bytes", url, start: 0, total: size, body, local: true };
    },
  };
}
