#!/usr/bin/env node
// Rebuilds the example registry shipped in examples/registry/ (used by `npm run demo`):
// two images, one of them in two versions, as real .tar.gz archives with their sha256.
// Deterministic: the same bytes on every run. Image URLs use the placeholder base
// http://127.0.0.1:8787/, which the demo server rewrites to the port it listens on.
import { createHash } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { fileURLToPath } from "node:url";
import tarStream from "tar-stream";

const out = fileURLToPath(new URL("../examples/registry/", import.meta.url));
const BASE = "http://127.0.0.1:8787/";
const MTIME = new Date("2026-01-01T00:00:00Z");

/** Pseudo-random but deterministic bytes (xorshift), so the archive does not compress away. */
function noise(size, seed) {
  const buf = Buffer.alloc(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < size; i += 4) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    buf.writeUInt32LE(x, i);
  }
  return buf;
}

async function tarGz(files) {
  const pack = tarStream.pack();
  const chunks = [];
  pack.on("data", (c) => chunks.push(c));
  const done = new Promise((r) => pack.on("end", r));
  for (const f of files) {
    if (f.linkname)
      pack.entry({ name: f.name, type: "symlink", linkname: f.linkname, mtime: MTIME });
    else if (f.name.endsWith("/"))
      pack.entry({ name: f.name, type: "directory", mode: 0o755, mtime: MTIME });
    else pack.entry({ name: f.name, mode: f.mode ?? 0o644, mtime: MTIME }, f.data);
  }
  pack.finalize();
  await done;
  return gzipSync(Buffer.concat(chunks), { level: 9 });
}

const images = [
  {
    name: "demo_arceos",
    version: "0.1.0",
    arch: "aarch64",
    description: "ArceOS demo guest for QEMU",
    released_at: "2026-01-10T08:00:00Z",
    seed: 1,
    kernel: 512 << 10,
  },
  {
    name: "demo_linux",
    version: "0.1.0",
    arch: "aarch64",
    description: "Linux demo guest for QEMU",
    released_at: "2026-01-10T08:05:00Z",
    seed: 2,
    kernel: 1 << 20,
  },
  {
    name: "demo_linux",
    version: "0.2.0",
    arch: "aarch64",
    description: "Linux demo guest for QEMU",
    released_at: "2026-02-14T09:30:00Z",
    seed: 3,
    kernel: 3 << 19,
  },
];

mkdirSync(out, { recursive: true });
let toml = "# Example registry shipped with axvisor-image (see scripts/make-examples.mjs).\n";
for (const img of images) {
  const file = `${img.name}-${img.version}.tar.gz`;
  const archive = await tarGz([
    { name: "kernel.bin", data: noise(img.kernel, img.seed), mode: 0o755 },
    { name: "rootfs.img", data: Buffer.alloc(1 << 20) },
    { name: "README", data: Buffer.from(`${img.description} ${img.version}\n`) },
    { name: "boot/" },
    { name: "boot/vmlinuz", linkname: "../kernel.bin" },
  ]);
  writeFileSync(out + file, archive);
  const sha256 = createHash("sha256").update(archive).digest("hex");
  toml += `\n[[images]]\nname = "${img.name}"\nversion = "${img.version}"\ndescription = "${img.description}"\nsha256 = "${sha256}"\narch = "${img.arch}"\nurl = "${BASE}${file}"\nreleased_at = "${img.released_at}"\n`;
}
writeFileSync(out + "default.toml", toml);
console.log(`wrote ${images.length} images to ${out}`);
