/**
 * Pushing to a registry that asks too much (src/transfer/oci/upload.ts): a minimum chunk length
 * that would put a whole large archive in one request body is refused before a byte is sent.
 */
import assert from "node:assert/strict";
import { open } from "node:fs/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { describe, it } from "node:test";
import { TransferError } from "../../../src/transfer/http.js";
import { parseOciReference } from "../../../src/transfer/oci/reference.js";
import { pushArchive } from "../../../src/transfer/oci/upload.js";
import { tempDir } from "../../helpers/images.js";

describe("a registry's minimum chunk length", () => {
  it("that would make a large archive one request is refused before any byte is sent", async () => {
    const seen: string[] = [];
    const server = http.createServer((req, res) => {
      seen.push(`${req.method} ${req.url}`);
      req.resume();
      req.on("end", () => {
        if (req.method === "POST") {
          res.writeHead(202, {
            location: "/v2/guests/blobs/uploads/1",
            "oci-chunk-min-length": "1000000000000000000",
          });
        } else res.writeHead(req.url === "/v2/" ? 200 : 404);
        res.end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { path: dir, cleanup } = await tempDir();
    try {
      // 300 MiB, sparse: nothing is read before the refusal.
      const archive = join(dir, "guest.tar.gz");
      const file = await open(archive, "w");
      await file.truncate(300 * 1024 * 1024);
      await file.close();
      const { port } = server.address() as AddressInfo;
      const ref = parseOciReference(`oci://127.0.0.1:${port}/guests:1.0`);
      await assert.rejects(
        pushArchive(
          ref,
          archive,
          { sha256: "a".repeat(64), size: 300 * 1024 * 1024 },
          {
            env: { DOCKER_CONFIG: join(dir, "none") },
            retries: 0,
          },
        ),
        (err: unknown) => {
          assert.ok(err instanceof TransferError, String(err));
          assert.match(err.message, /chunks of at least 1000000000000000000 bytes/);
          return true;
        },
      );
      assert.ok(!seen.some((r) => /^(PATCH|PUT) /.test(r)), seen.join("\n"));
    } finally {
      server.close();
      await cleanup();
    }
  });
});
