/**
 * A cut upload resumes: pushed in chunks to the real docker-registry, interrupted after two
 * acknowledged chunks, then pushed again with the same session: the registry is asked where the
 * upload stands and only the rest is sent. A session the registry no longer knows starts over.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { AbortedError } from "../../../src/errors.js";
import { parseOciReference } from "../../../src/transfer/oci/reference.js";
import { pushArchive, type UploadSession } from "../../../src/transfer/oci/upload.js";
import { sha256, tempDir } from "../../helpers/images.js";
import { missingRegistry, startDockerRegistry, type DockerRegistry } from "./docker-registry.js";

const CHUNK = 64 * 1024;

/** An upload session kept in memory. */
function memorySession(): UploadSession & { saved: Map<string, string> } {
  const saved = new Map<string, string>();
  return {
    saved,
    load: async (digest) => saved.get(digest),
    save: async (digest, location) => void saved.set(digest, location),
    clear: async (digest) => void saved.delete(digest),
  };
}

function requests(log: string, pattern: RegExp): number {
  return log.split("\n").filter((line) => pattern.test(line)).length;
}

describe("resuming a cut upload (docker-registry)", { skip: missingRegistry() }, () => {
  let registry: DockerRegistry;
  let dir: Awaited<ReturnType<typeof tempDir>>;
  const saved = { ...process.env };
  before(async () => {
    registry = await startDockerRegistry();
    dir = await tempDir("axi-upload-resume-");
    process.env.DOCKER_CONFIG = join(dir.path, "no-docker-config");
  });
  after(async () => {
    process.env = saved;
    await registry?.close();
    await dir?.cleanup();
  });

  it("goes on from the last acknowledged chunk", async () => {
    const data = randomBytes(400_000); // 6 chunks of 64 KiB and a 6,784-byte tail
    const path = join(dir.path, "guest.tar.gz");
    await writeFile(path, data);
    const file = { sha256: sha256(data), size: data.length };
    const ref = parseOciReference(`oci://${registry.host}/guests/resume:1.0`);
    const session = memorySession();
    const stop = new AbortController();
    const onProgress = (sent: number) => {
      if (sent >= 2 * CHUNK) stop.abort();
    };
    await assert.rejects(
      pushArchive(ref, path, file, { chunkSize: CHUNK, session, signal: stop.signal, onProgress }),
      AbortedError,
    );
    assert.equal(session.saved.size, 1, "the upload's location is kept");
    const patchesBefore = requests(registry.log(), /"PATCH \/v2\/guests\/resume\/blobs\/uploads\//);
    assert.equal(patchesBefore, 2);

    const pushed = await pushArchive(ref, path, file, { chunkSize: CHUNK, session });
    assert.equal(pushed.uploaded, true);
    const log = registry.log();
    assert.equal(
      requests(log, /"GET \/v2\/guests\/resume\/blobs\/uploads\//),
      1,
      "asked where it stands",
    );
    const patches = requests(log, /"PATCH \/v2\/guests\/resume\/blobs\/uploads\//) - patchesBefore;
    assert.equal(patches, 4, "only the chunks the registry did not have (6 from the start)");
    assert.equal(session.saved.size, 0, "the finished upload is forgotten");
  });

  it("a session the registry no longer has starts over", async () => {
    const data = randomBytes(150_000);
    const path = join(dir.path, "other.tar.gz");
    await writeFile(path, data);
    const file = { sha256: sha256(data), size: data.length };
    const ref = parseOciReference(`oci://${registry.host}/guests/stale:1.0`);
    const session = memorySession();
    const bogus = `http://${registry.host}/v2/guests/stale/blobs/uploads/0b4c2a6e-0000-4000-8000-000000000000?_state=x`;
    session.saved.set(`sha256:${file.sha256}`, bogus);
    const pushed = await pushArchive(ref, path, file, { chunkSize: CHUNK, session });
    assert.equal(pushed.uploaded, true);
    assert.equal(session.saved.size, 0);
  });
});
