/**
 * `npm run demo`: a real pull, offline. Makes an example registry (two images, one of them in two
 * versions, as real .tar.gz archives) in memory, serves it from 127.0.0.1 (throttled a little so
 * that the progress bar shows), then drives the real CLI: sync, ls, pull, pull again. The store
 * it makes is removed at the end.
 */
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CLI, makeTarGz, registryToml, sha256, type TestEntry } from "../test/helpers/images.js";

const BYTES_PER_SECOND = 2 << 20;

/** Pseudo-random but deterministic bytes (xorshift), so that the archive does not compress away. */
function noise(size: number, seed: number): Buffer {
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

const IMAGES = [
  ["demo_arceos", "0.1.0", "ArceOS demo guest for QEMU", "2026-01-10T08:00:00Z", 512 << 10],
  ["demo_linux", "0.1.0", "Linux demo guest for QEMU", "2026-01-10T08:05:00Z", 1 << 20],
  ["demo_linux", "0.2.0", "Linux demo guest for QEMU", "2026-02-14T09:30:00Z", 3 << 19],
] as const;

/** The files the server serves, by name: the archives, and `default.toml` once the port is known. */
const files = new Map<string, Buffer>();
const entries: (TestEntry & { file: string })[] = [];
for (const [i, [name, version, description, released_at, kernel]] of IMAGES.entries()) {
  const archive = await makeTarGz([
    { name: "kernel.bin", data: noise(kernel, i + 1), mode: 0o755 },
    { name: "rootfs.img", data: Buffer.alloc(1 << 20) },
    { name: "README", data: `${description} ${version}\n` },
    { name: "boot/", type: "directory" },
    { name: "boot/vmlinuz", type: "symlink", linkname: "../kernel.bin" },
  ]);
  const file = `${name}-${version}.tar.gz`;
  files.set(file, archive);
  entries.push({ name, version, description, released_at, sha256: sha256(archive), url: "", file });
}

const server = createServer((req, res) => {
  const body = files.get(decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname.slice(1)));
  if (body === undefined) {
    res.writeHead(404).end();
    return;
  }
  res.writeHead(200, { "content-length": body.length });
  let offset = 0;
  const tick = setInterval(() => {
    const end = Math.min(body.length, offset + BYTES_PER_SECOND / 20);
    res.write(body.subarray(offset, end));
    offset = end;
    if (offset >= body.length) {
      clearInterval(tick);
      res.end();
    }
  }, 50);
});
await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
files.set(
  "default.toml",
  Buffer.from(registryToml(entries.map((e) => ({ ...e, url: `${base}${e.file}` })))),
);
const store = mkdtempSync(join(tmpdir(), "axvisor-image-demo-"));
const global = ["-S", store, "-R", `${base}default.toml`];

const bold = process.stderr.isTTY && !process.env.NO_COLOR;
function step(title: string): void {
  const line = `$ axvisor-image ${title}`;
  process.stderr.write(bold ? `\n\x1b[1m${line}\x1b[0m\n` : `\n${line}\n`);
}
function run(args: string[], capture = false): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...global, ...args], {
      stdio: ["ignore", capture ? "pipe" : "inherit", "inherit"],
    });
    let out = "";
    child.stdout?.on("data", (d: Buffer) => (out += d.toString()));
    child.on("exit", (code) =>
      code === 0
        ? resolve(out)
        : reject(new Error(`axvisor-image ${args.join(" ")} exited ${code}`)),
    );
  });
}

try {
  process.stderr.write(`example registry served at ${base}default.toml\nstore: ${store}\n`);
  step("sync");
  await run(["sync"]);
  step("ls -v");
  await run(["ls", "-v"]);
  step("pull demo_linux");
  const path = (await run(["pull", "demo_linux"], true)).trim();
  process.stdout.write(`${path}\n`);
  step("pull demo_linux   (again: nothing to download)");
  await run(["pull", "demo_linux"], true);
  process.stderr.write(`\nThe image went to ${path}:\n`);
  spawnSync("ls", ["-la", path], { stdio: "inherit" });
  process.stderr.write(`\nstore ${store} (removed now):\n`);
  spawnSync("ls", ["-la", store], { stdio: "inherit" });
} finally {
  server.close();
  rmSync(store, { recursive: true, force: true });
}
