import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { createServer, type AddressInfo } from "node:net";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { download } from "../../src/transfer/download.js";
import { tempDir } from "../helpers/images.js";

const BODY = randomBytes(4 << 20);

/**
 * nodejs/undici#5360: a server that closes the connection right after the body, while the
 * consumer is slower than the network, used to kill the process with an AssertionError.
 */
describe("a server closing the connection while the body is paused", () => {
  const server = createServer((socket) => {
    socket.once("data", () => {
      socket.write(
        `HTTP/1.1 200 OK\r\nContent-Length: ${BODY.length}\r\nConnection: close\r\n\r\n`,
      );
      socket.end(BODY);
    });
  });
  let dir: Awaited<ReturnType<typeof tempDir>>;
  before(async () => {
    dir = await tempDir();
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  });
  after(async () => {
    server.close();
    await dir.cleanup();
  });

  it("completes the download with every byte (HTTP/1.0-style close)", async () => {
    for (let round = 0; round < 3; round++) {
      const hash = createHash("sha256");
      let bytes = 0;
      const { port } = server.address() as AddressInfo;
      await download({
        urls: [`http://127.0.0.1:${port}/image.tar.gz`],
        partPath: join(dir.path, `image-${round}.part`),
        sink: {
          reset: async () => {},
          write: async (chunk) => {
            hash.update(chunk);
            bytes += chunk.length;
            await sleep(1); // a consumer slower than loopback: undici pauses its parser
          },
        },
      });
      assert.equal(bytes, BODY.length);
      assert.equal(hash.digest("hex"), createHash("sha256").update(BODY).digest("hex"));
    }
  });
});
