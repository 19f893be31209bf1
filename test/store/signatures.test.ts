/** The rollback state in the store's bookkeeping (src/store/signatures.ts). */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { lstat, mkdir, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { AcceptedSignatures } from "../../src/registry/signature.js";
import { readAcceptedSignatures, writeAcceptedSignatures } from "../../src/store/signatures.js";
import { tempDir } from "../helpers/images.js";

describe("the rollback state", () => {
  let dir: { path: string; cleanup: () => Promise<void> };
  const statePath = () => join(dir.path, ".axvisor-image", "signatures.json");
  before(async () => {
    dir = await tempDir();
  });
  after(() => dir.cleanup());

  it("is empty in a new store, and reads back what was written", async () => {
    assert.deepEqual(await readAcceptedSignatures(dir.path), new Map());
    const accepted: AcceptedSignatures = new Map([
      ["https://example.com/registry.toml", { keyId: "F7073FCE3D2CAC77", timestamp: 1767225600 }],
      ["/srv/registry/v1.toml", { keyId: "0123456789ABCDEF", timestamp: 0 }],
      // A hostile location is a key like any other, never the object's prototype.
      ["__proto__", { keyId: "0123456789ABCDEF", timestamp: 7 }],
    ]);
    await writeAcceptedSignatures(dir.path, accepted);
    assert.deepEqual(await readAcceptedSignatures(dir.path), accepted);
    const stored = JSON.parse(await readFile(statePath(), "utf8")) as { files: object };
    assert.deepEqual(stored.files["https://example.com/registry.toml" as keyof object], {
      key_id: "F7073FCE3D2CAC77",
      timestamp: 1767225600,
    });
  });

  it("replaces a link in its place instead of writing through it, and never opens a FIFO", async () => {
    const outside = join(dir.path, "outside.txt");
    await writeFile(outside, "not the store's\n");
    await rm(statePath(), { force: true });
    await symlink(outside, statePath());
    const accepted: AcceptedSignatures = new Map([
      ["https://example.com/r.toml", { keyId: "F7073FCE3D2CAC77", timestamp: 1 }],
    ]);
    await writeAcceptedSignatures(dir.path, accepted);
    assert.equal(await readFile(outside, "utf8"), "not the store's\n");
    assert.ok((await lstat(statePath())).isFile());
    assert.deepEqual(await readAcceptedSignatures(dir.path), accepted);
    await rm(statePath());
    execFileSync("mkfifo", [statePath()]);
    await assert.rejects(readAcceptedSignatures(dir.path), (err: Error) => {
      assert.match(err.message, /signatures\.json: a FIFO, not a regular file/);
      return true;
    });
    await rm(statePath());
  });

  it("refuses a state it cannot trust, naming the file and what removing it costs", async () => {
    const bad = [
      "{",
      "[]",
      JSON.stringify({ version: 2, files: {} }),
      JSON.stringify({ version: 1, files: { x: { key_id: "f7073fce3d2cac77", timestamp: 1 } } }),
      JSON.stringify({ version: 1, files: { x: { key_id: "F7073FCE3D2CAC77", timestamp: -1 } } }),
      JSON.stringify({ version: 1, files: { x: { key_id: "F7073FCE3D2CAC77", timestamp: 1.5 } } }),
      JSON.stringify({ version: 1, files: { x: null } }),
    ];
    await mkdir(join(dir.path, ".axvisor-image"), { recursive: true });
    for (const text of bad) {
      await writeFile(statePath(), text);
      await assert.rejects(
        readAcceptedSignatures(dir.path),
        (err: Error & { hint?: string }) => {
          assert.equal(
            err.message,
            `${statePath()}: corrupt rollback state (not a state this version wrote)`,
          );
          assert.match(err.hint ?? "", /accepts any correctly signed registry, however old/);
          return true;
        },
        text,
      );
    }
  });

  it("is an error naming the path when the store cannot hold it", async () => {
    const store = join(dir.path, "a-file");
    await writeFile(store, "not a directory");
    await assert.rejects(
      writeAcceptedSignatures(store, new Map()),
      /a-file is not a directory|a-file is a file/,
    );
  });
});
