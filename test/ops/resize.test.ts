/**
 * `resize IMAGE_FILE --size-mib N [-o OUT]`: a real ext4 image made with mkfs.ext4 and grown with
 * the real e2fsprogs (skipped, with the reason, when they are not installed), and the errors.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { open, readFile, stat, truncate, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { defaultToolDirs, findTool, resizeImage } from "../../src/ops/resize.js";
import { cliEnv, runCli, tempDir } from "../helpers/images.js";

const MIB = 1024 * 1024;
const mkfs = await findTool("mkfs.ext4", defaultToolDirs());
const tools = await Promise.all(["e2fsck", "resize2fs"].map((t) => findTool(t, defaultToolDirs())));
const skipReal =
  mkfs === undefined || tools.includes(undefined)
    ? "e2fsprogs (mkfs.ext4, e2fsck, resize2fs) is not installed"
    : false;

/** Size in bytes of the ext file system in `path`, read from its superblock. */
async function fsBytes(path: string): Promise<number> {
  const file = await open(path, "r");
  try {
    const sb = Buffer.alloc(1024);
    await file.read(sb, 0, 1024, 1024);
    const blocks = sb.readUInt32LE(4) + sb.readUInt32LE(0x150) * 2 ** 32;
    return blocks * (1024 << sb.readUInt32LE(24));
  } finally {
    await file.close();
  }
}

describe("resize", () => {
  let dir: { path: string; cleanup: () => Promise<void> };
  const cli = (args: string[]) => runCli(args, { cwd: dir.path, env: cliEnv() });
  before(async () => {
    dir = await tempDir();
  });
  after(() => dir.cleanup());

  it("refuses a file that is not an ext2/3/4 image, naming it", async () => {
    const path = join(dir.path, "disk.img");
    await writeFile(path, Buffer.alloc(4096, 7));
    const run = await cli(["resize", path, "--size-mib", "8"]);
    assert.equal(run.code, 1);
    assert.equal(run.stderr.split("\n")[0], `error: ${path} is not an ext2/3/4 file-system image`);
    assert.equal((await stat(path)).size, 4096, "left as it was");
  });

  it("--size-mib is required and must be a whole number", async () => {
    const missing = await cli(["resize", "x.img"]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /--size-mib/);
    const bad = await cli(["resize", "x.img", "--size-mib", "1.5"]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /^error: --size-mib must be a whole number >= 1, got "1\.5"$/m);
  });

  it("names e2fsprogs when its programs are missing, before touching the file", async () => {
    const path = join(dir.path, "fake-ext.img");
    const image = Buffer.alloc(2 * MIB);
    image.writeUInt16LE(0xef53, 1024 + 0x38);
    await writeFile(path, image);
    await assert.rejects(
      resizeImage(path, { sizeMiB: 4, toolDirs: [dir.path] }),
      /^AxError: resize needs e2fsck and resize2fs from e2fsprogs, which is not installed$/,
    );
    assert.equal((await stat(path)).size, 2 * MIB);
  });

  it(
    "grows a real ext4 image in place, and into -o OUT; never shrinks",
    { skip: skipReal },
    async () => {
      const path = join(dir.path, "rootfs.img");
      await writeFile(path, "");
      await truncate(path, 8 * MIB);
      execFileSync(mkfs!, ["-F", "-q", path], { stdio: "ignore" });
      assert.equal(await fsBytes(path), 8 * MIB);

      const grown = await cli(["resize", path, "--size-mib", "16"]);
      assert.equal(grown.code, 0, grown.stderr);
      assert.equal(grown.stdout, `${path}\n`);
      assert.equal((await stat(path)).size, 16 * MIB);
      assert.equal(await fsBytes(path), 16 * MIB);

      const out = join(dir.path, "big.img");
      const before = await readFile(path);
      const copy = await cli(["resize", path, "--size-mib", "24", "-o", out]);
      assert.equal(copy.code, 0, copy.stderr);
      assert.equal(copy.stdout, `${out}\n`);
      assert.equal(await fsBytes(out), 24 * MIB);
      assert.ok(before.equals(await readFile(path)), "the original is untouched");
      const { blocks } = await stat(out);
      assert.ok(blocks * 512 < 24 * MIB, "the copy keeps its holes");

      const shrink = await cli(["resize", path, "--size-mib", "8"]);
      assert.equal(shrink.code, 2);
      assert.match(
        shrink.stderr,
        /^error: refusing to shrink .*rootfs\.img: it is 16 MiB, --size-mib is 8$/m,
      );
      assert.equal(await fsBytes(path), 16 * MIB);
    },
  );
});
