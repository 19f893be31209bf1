/**
 * `python3 -m http.server` (HTTP/1.0: every body ends when the server closes the connection) as
 * the server of downloads, through the library and the CLI. With undici 7 a body paused by a slow
 * reader when the server closed killed the process with `AssertionError: assert(!this.paused)`.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, readFile, readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { httpRequest } from "../../src/transfer/http.js";
import { missing } from "../helpers/daemon.js";
import {
  cliEnv,
  makeTarGz,
  registryToml,
  runCli,
  sha256,
  tempDir,
  type TestEntry,
} from "../helpers/images.js";
import { startPythonServer, type PythonServer } from "../helpers/python-server.js";

/** A guest-like image: a kernel that does not compress, a root file system that does. */
function guestFiles(name: string): { name: string; data: Buffer }[] {
  const lines = Array.from({ length: 60_000 }, (_, i) => `${name}: line ${i} of the rootfs\n`);
  return [
    { name: "kernel", data: randomBytes(512 * 1024) },
    { name: "rootfs/notes.txt", data: Buffer.from(lines.join("")) },
  ];
}

describe(
  "python3 -m http.server (HTTP/1.0, close-delimited bodies)",
  { skip: missing("python3") },
  () => {
    let dir: Awaited<ReturnType<typeof tempDir>>;
    let server: PythonServer;
    const names = ["alpha", "beta", "gamma", "delta"];
    const files = new Map<string, { name: string; data: Buffer }[]>();
    const blobs = new Map<string, Buffer>();

    before(async () => {
      dir = await tempDir();
      const root = join(dir.path, "www");
      await mkdir(root);
      const sizes = [40_000, 300_000, 1_500_000, 5_000_000];
      for (const size of sizes) {
        const blob = randomBytes(size);
        blobs.set(`blob-${size}.bin`, blob);
        await writeFile(join(root, `blob-${size}.bin`), blob);
      }
      server = await startPythonServer(root);
      const entries: TestEntry[] = [];
      for (const name of names) {
        const members = guestFiles(name);
        files.set(name, members);
        const archive = await makeTarGz(members);
        await writeFile(join(root, `${name}.tar.gz`), archive);
        entries.push({ name, url: server.url(`${name}.tar.gz`), sha256: sha256(archive) });
      }
      await writeFile(join(root, "registry.toml"), registryToml(entries));
    });
    after(async () => {
      await server?.stop();
      await dir?.cleanup();
    });

    it("reads every byte of bodies that a slow reader pauses while the server closes", async () => {
      for (let round = 0; round < 20; round++) {
        await Promise.all(
          [...blobs].map(async ([file, blob], i) => {
            const response = await httpRequest(server.url(file));
            assert.equal(response.status, 200);
            const chunks: Buffer[] = [];
            let n = 0;
            for await (const chunk of response.body) {
              chunks.push(chunk as Buffer);
              if ((n++ + round + i) % 3 === 0) await sleep(5); // backpressure
            }
            assert.equal(sha256(Buffer.concat(chunks)), sha256(blob), file);
          }),
        );
      }
    });

    it("the CLI pulls four images at once, in fresh stores, every time", async () => {
      for (let round = 0; round < 3; round++) {
        const store = join(dir.path, `store-${round}`);
        const args = ["-S", store, "-R", server.url("registry.toml"), "pull", "-j", "4", ...names];
        const run = await runCli(args, { env: cliEnv() });
        assert.doesNotMatch(run.stderr, /AssertionError|at .*\.js:\d+/);
        assert.equal(run.code, 0, run.stderr);
        for (const name of names) {
          for (const member of files.get(name)!) {
            assert.deepEqual(await readFile(join(store, name, member.name)), member.data);
          }
        }
        assert.deepEqual(
          (await readdir(store)).filter((f) => f.endsWith(".part")),
          [],
          "no .part left",
        );
        assert.equal(existsSync(join(store, "alpha.tar.gz")), true);
      }
    });
  },
);
