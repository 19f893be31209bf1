#!/usr/bin/env node
// `npm run demo`: a real pull, offline. Serves the example registry shipped in examples/registry/
// from 127.0.0.1 (throttled a little so the progress bar is visible), then drives the real CLI:
// sync, ls, pull, and prints where the image went.
import { spawnSync, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("../examples/registry/", import.meta.url));
const cli = fileURLToPath(new URL("../bin/axvisor-image", import.meta.url));
const BYTES_PER_SECOND = 2 << 20;

const server = createServer((req, res) => {
  const name = decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname.slice(1));
  if (!/^[\w.-]+$/.test(name) || !readdirSync(root).includes(name)) {
    res.writeHead(404).end();
    return;
  }
  let body = readFileSync(join(root, name));
  if (name.endsWith(".toml")) {
    body = Buffer.from(body.toString().replaceAll("http://127.0.0.1:8787/", base));
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
await new Promise((r) => server.listen(0, "127.0.0.1", r));
const base = `http://127.0.0.1:${server.address().port}/`;
const store = mkdtempSync(join(tmpdir(), "axvisor-image-demo-"));
const global = ["-S", store, "-R", `${base}default.toml`];

const bold = process.stderr.isTTY && !process.env.NO_COLOR;
function step(title) {
  const line = `$ axvisor-image ${title}`;
  process.stderr.write(bold ? `\n\x1b[1m${line}\x1b[0m\n` : `\n${line}\n`);
}
function run(args, capture = false) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cli, ...global, ...args], {
      stdio: ["ignore", capture ? "pipe" : "inherit", "inherit"],
    });
    let out = "";
    child.stdout?.on("data", (d) => (out += d));
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
  process.stderr.write(`\nstore ${store}:\n`);
  spawnSync("ls", ["-la", store], { stdio: "inherit" });
} finally {
  server.close();
}
