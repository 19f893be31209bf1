/** The store scanner's disk usage (src/store/scan.ts): what `du` and `prune` report. */
import assert from "node:assert/strict";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, it } from "node:test";
import { diskUsage } from "../../src/store/scan.js";
import { tempDir } from "../helpers/images.js";

describe("diskUsage", () => {
  it("counts files whose names are not UTF-8 (as du does), and a missing path as 0", async () => {
    const { path: dir, cleanup } = await tempDir();
    try {
      const tree = join(dir, "tree");
      await mkdir(tree);
      const data = Buffer.alloc(64 * 1024, 1);
      await writeFile(join(tree, "plain"), data);
      // Latin-1 "café" and a lone continuation byte: names a UTF-8 decoding cannot give back.
      for (const name of [Buffer.from("caf\xe9", "latin1"), Buffer.from([0x80, 0x41])]) {
        await writeFile(Buffer.concat([Buffer.from(`${tree}/`), name]), data);
      }
      const sub = Buffer.concat([Buffer.from(`${tree}/`), Buffer.from([0xff, 0x2e, 0x64])]);
      await mkdir(sub);
      await writeFile(Buffer.concat([sub, Buffer.from("/inner")]), data);
      const bytes = await diskUsage(tree);
      assert.ok(bytes >= 4 * data.length, `${bytes} bytes for 4 files of ${data.length}`);
      assert.equal(await diskUsage(join(dir, "absent")), 0);
    } finally {
      await cleanup();
    }
  });
});
