/**
 * `mirror`: into a directory served by real web servers (nginx, python's http.server) and into a
 * real OCI registry (Debian's docker-registry), each then pulled from with the original server
 * stopped; run again, nothing moves; an unreachable target fails before anything is downloaded;
 * an interrupted mirror resumes where it stopped.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, readFile, readdir, rm, writeFile } from "node:fs/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { chooseImages } from "../../src/ops/mirror.js";
import { parseRegistry } from "../../src/registry/format.js";
import { parseSpec } from "../../src/registry/resolve.js";
import type { ImageEntry } from "../../src/registry/types.js";
import { missing } from "../helpers/daemon.js";
import { NO_MINISIGN, minisignKeyPair, minisignVerify } from "../helpers/minisign.js";
import { closedPort } from "../helpers/fault-server.js";
import { cliEnv, runCli, type CliRun } from "../helpers/images.js";
import { startNginx } from "../helpers/nginx.js";
import { startPythonServer } from "../helpers/python-server.js";
import { startWorld, type Published, type World } from "../helpers/world.js";
import { missingRegistry, startDockerRegistry } from "../transfer/oci/docker-registry.js";

const KERNELS = {
  "linux:1.0": randomBytes(120_000),
  "linux:2.0": randomBytes(130_000),
  "arceos:0.1": randomBytes(90_000),
};

/** A world publishing linux 1.0 and 2.0 (newest) and arceos 0.1. */
async function threeImages(): Promise<World> {
  const w = await startWorld();
  await w.publish("linux", "1.0", [{ name: "kernel", data: KERNELS["linux:1.0"] }], {
    released_at: "2026-01-01T00:00:00Z",
  });
  await w.publish("linux", "2.0", [{ name: "kernel", data: KERNELS["linux:2.0"] }], {
    released_at: "2026-02-01T00:00:00Z",
  });
  await w.publish("arceos", "0.1", [{ name: "kernel", data: KERNELS["arceos:0.1"] }]);
  return w;
}

/** Pulls `image` with a fresh store from the registry at `registry`; returns the kernel. */
async function pullFrom(root: string, registry: string, image: string): Promise<Buffer> {
  const store = join(root, `store-${randomBytes(4).toString("hex")}`);
  const run = await runCli(["-S", store, "-R", registry, "pull", image], { env: cliEnv() });
  assert.equal(run.code, 0, run.stderr);
  return readFile(join(run.stdout.trim(), "kernel"));
}

function assertOneError(run: CliRun, pattern: RegExp): void {
  assert.equal(run.code, 1, run.stderr);
  assert.match(run.stderr, pattern);
  assert.equal(run.stderr.match(/^error: /gm)?.length, 1, run.stderr);
}

/** Closes `w`, whose server a test may have stopped already. */
async function closeWorld(w: World): Promise<void> {
  await w.close().catch(() => rm(w.root, { recursive: true, force: true }));
}

function archiveRequests(w: World): number {
  return w.server.requests.filter((r) => r.path.startsWith("/files/")).length;
}

describe("mirror: choosing images", () => {
  const entry = (name: string, version: string, released_at?: string): ImageEntry => ({
    name,
    version,
    description: "d",
    sha256: "0".repeat(64),
    arch: "aarch64",
    url: `https://example.org/${name}-${version}.tar.gz`,
    released_at,
  });
  const images = [
    entry("linux", "1.0", "2026-01-01T00:00:00Z"),
    entry("linux", "2.0", "2026-02-01T00:00:00Z"),
    entry("arceos", "0.1"),
  ];
  const chosen = (specs: string[], latest = false) =>
    chooseImages(images, specs.map(parseSpec), latest).map((e) => `${e.name}:${e.version}`);

  it("takes every image, every version of a name, one version, or the newest of each", () => {
    assert.deepEqual(chosen([]), ["linux:1.0", "linux:2.0", "arceos:0.1"]);
    assert.deepEqual(chosen([], true), ["linux:2.0", "arceos:0.1"]);
    assert.deepEqual(chosen(["linux"]), ["linux:1.0", "linux:2.0"]);
    assert.deepEqual(chosen(["linux"], true), ["linux:2.0"]);
    assert.deepEqual(chosen(["linux:1.0", "arceos"]), ["linux:1.0", "arceos:0.1"]);
    assert.throws(() => chosen(["nope"]), /nope/);
    assert.throws(() => chosen(["linux:3.0"]), /no version 3\.0/);
  });
});

describe("mirror --to DIR", () => {
  let w: World;
  before(async () => {
    w = await threeImages();
  });
  after(() => closeWorld(w));

  it(
    "writes archives and a relative registry file; nginx and python serve it without the original",
    {
      skip: missing("nginx") || missing("python3"),
    },
    async () => {
      const dir = join(w.root, "www");
      const run = await w.cli(["mirror", "--to", dir]);
      assert.equal(run.code, 0, run.stderr);
      assert.equal(run.stdout.trim(), join(dir, "registry.toml"));
      assert.deepEqual((await readdir(join(dir, "1.0"))).sort(), ["linux.tar.gz"]);
      assert.deepEqual((await readdir(join(dir, "2.0"))).sort(), ["linux.tar.gz"]);
      const text = await readFile(join(dir, "registry.toml"), "utf8");
      const written = parseRegistry(text, "registry.toml").images;
      assert.deepEqual(written.map((e) => [e.name, e.version, e.url]).sort(), [
        ["arceos", "0.1", "0.1/arceos.tar.gz"],
        ["linux", "1.0", "1.0/linux.tar.gz"],
        ["linux", "2.0", "2.0/linux.tar.gz"],
      ]);
      const original = parseRegistry(
        await readFile(join(w.store, "images.toml"), "utf8"),
        "images.toml",
      ).images;
      for (const e of written) {
        const same = original.find((o) => o.name === e.name && o.version === e.version);
        assert.equal(e.sha256, same?.sha256, "the same sha256 as the original registry");
      }

      // Run again: nothing is downloaded from the origin, nothing is rewritten.
      const before = archiveRequests(w);
      const again = await w.cli(["mirror", "--to", dir]);
      assert.equal(again.code, 0, again.stderr);
      assert.equal(archiveRequests(w), before, "no archive asked of the origin again");
      assert.equal(await readFile(join(dir, "registry.toml"), "utf8"), text);
      assert.match(again.stderr, /linux:2\.0: already in/);

      await w.server.close(); // the original is gone: the mirror serves alone
      const nginx = await startNginx(dir, join(w.root, "nginx"));
      const python = await startPythonServer(dir);
      try {
        const fromNginx = await pullFrom(w.root, nginx.url("registry.toml"), "linux");
        assert.deepEqual(fromNginx, KERNELS["linux:2.0"]);
        const fromPython = await pullFrom(w.root, python.url("registry.toml"), "linux:1.0");
        assert.deepEqual(fromPython, KERNELS["linux:1.0"]);
      } finally {
        await nginx.stop();
        await python.stop();
      }
    },
  );
});

describe("mirror --to DIR: more", () => {
  let w: World;
  const big = randomBytes(3 << 20);
  let published: Published;
  before(async () => {
    w = await threeImages();
    published = await w.publish("big", "1.0", [{ name: "kernel", data: big }]);
    await w.publish("bad", "1.0", [{ name: "kernel", data: "x" }], { sha256: "0".repeat(64) });
  });

  it("an image that fails is named; the others are mirrored and written", async () => {
    const dir = join(w.root, "partial");
    const run = await w.cli(["mirror", "bad", "arceos", "--to", dir]);
    assertOneError(run, /bad/);
    assert.equal(run.stdout.trim(), join(dir, "registry.toml"));
    const file = join(dir, "registry.toml");
    const written = parseRegistry(await readFile(file, "utf8"), file).images;
    assert.deepEqual(
      written.map((e) => e.name),
      ["arceos"],
    );
    assert.deepEqual(await readdir(dir).then((names) => names.sort()), ["0.1", "registry.toml"]);
  });
  after(() => closeWorld(w));

  it("--latest and names, with a registry file elsewhere: URLs relative to it", async () => {
    const dir = join(w.root, "latest");
    const file = join(w.root, "lists", "team.toml");
    const run = await w.cli(["mirror", "--latest", "linux", "--to", dir, "--registry-file", file]);
    assert.equal(run.code, 0, run.stderr);
    const written = parseRegistry(await readFile(file, "utf8"), file).images;
    assert.deepEqual(
      written.map((e) => [e.name, e.version, e.url]),
      [["linux", "2.0", "../latest/2.0/linux.tar.gz"]],
    );
    assert.deepEqual(await pullFrom(w.root, file, "linux"), KERNELS["linux:2.0"]);
    // A second run for another image keeps the first entry.
    const more = await w.cli(["mirror", "arceos", "--to", dir, "--registry-file", file]);
    assert.equal(more.code, 0, more.stderr);
    const both = parseRegistry(await readFile(file, "utf8"), file).images;
    assert.deepEqual(both.map((e) => e.name).sort(), ["arceos", "linux"]);
  });

  it("a destination that is a file fails with one error, nothing downloaded", async () => {
    const file = join(w.root, "not-a-dir");
    await writeFile(file, "x");
    const before = archiveRequests(w);
    const run = await w.cli(["mirror", "--to", file]);
    assertOneError(run, /not-a-dir/);
    assert.equal(archiveRequests(w), before);
  });

  it("a registry file that cannot be written fails at once, before anything moves", async () => {
    const notToml = join(w.root, "not-toml.toml");
    await writeFile(notToml, "this is = = not toml\n");
    // TOML, but another tool's file: the mirror's entries would be appended to it.
    const cargo = join(w.root, "Cargo.toml");
    await writeFile(cargo, '[package]\nname = "axvisor"\nversion = "0.1.0"\n');
    const cases: [string[], RegExp][] = [
      [["--registry-file", notToml], /not-toml\.toml:1:/],
      [
        ["--registry-file", cargo],
        /Cargo\.toml is not a registry file: it lists no images and has other keys \(package\)$/m,
      ],
      [["--registry-file", w.root], /a directory, not a regular file/],
      [["--registry-file", join(notToml, "registry.toml")], /not-toml\.toml/],
    ];
    for (const [args, pattern] of cases) {
      const dir = join(w.root, `unwritten-${randomBytes(4).toString("hex")}`);
      const before = archiveRequests(w);
      const run = await w.cli(["mirror", "linux:2.0", "--to", dir, ...args]);
      assertOneError(run, pattern);
      assert.equal(archiveRequests(w), before, `nothing downloaded: ${args.join(" ")}`);
      assert.deepEqual(await readdir(dir).catch(() => []), [], "nothing copied");
    }
    assert.equal(await readFile(notToml, "utf8"), "this is = = not toml\n");
    assert.equal(await readFile(cargo, "utf8"), '[package]\nname = "axvisor"\nversion = "0.1.0"\n');
  });

  it("a file of the destination that is not the image's archive is never replaced", async () => {
    const dir = join(w.root, "occupied");
    await mkdir(join(dir, "1.0"), { recursive: true });
    await writeFile(join(dir, "1.0", "linux.tar.gz"), "my own build");
    const run = await w.cli(["mirror", "linux:1.0", "arceos", "--to", dir]);
    assertOneError(run, /^error: linux:1\.0: .*occupied\/1\.0\/linux\.tar\.gz .*not replaced/m);
    assert.equal(await readFile(join(dir, "1.0", "linux.tar.gz"), "utf8"), "my own build");
    const file = join(dir, "registry.toml");
    const written = parseRegistry(await readFile(file, "utf8"), file).images;
    assert.deepEqual(
      written.map((e) => e.name),
      ["arceos"],
      "the others are mirrored",
    );
  });

  it(
    "--key signs the registry file written, as minisign -V checks it",
    { skip: NO_MINISIGN },
    async () => {
      const keys = await minisignKeyPair(w.root, "mirror");
      const dir = join(w.root, "signed");
      const run = await w.cli(["mirror", "arceos", "--to", dir, "--key", keys.secretKey]);
      assert.equal(run.code, 0, run.stderr);
      const file = join(dir, "registry.toml");
      const verified = await minisignVerify(file, `${file}.minisig`, keys.publicKey);
      assert.equal(verified.code, 0, verified.stderr);
      // A second run for another image re-signs the file it changed.
      const more = await w.cli(["mirror", "linux:1.0", "--to", dir, "--key", keys.secretKey]);
      assert.equal(more.code, 0, more.stderr);
      const again = await minisignVerify(file, `${file}.minisig`, keys.publicKey);
      assert.equal(again.code, 0, again.stderr);
    },
  );

  it("offline: a directory is filled from the store alone; an OCI registry is refused", async () => {
    const dir = join(w.root, "offline");
    const filled = await w.cli(["mirror", "arceos", "--to", dir]); // arceos is in the store now
    assert.equal(filled.code, 0, filled.stderr);
    const before = w.server.requests.length;
    const again = await w.cli(["--offline", "mirror", "arceos", "--to", join(w.root, "offline2")]);
    assert.equal(again.code, 0, again.stderr);
    const oci = await w.cli([
      "--offline",
      "mirror",
      "--to",
      "oci://127.0.0.1:1/guests",
      "--registry-file",
      join(w.root, "oci.toml"),
    ]);
    assertOneError(
      oci,
      /^error: mirror --to oci:\/\/ needs the network, and offline mode forbids it$/m,
    );
    assert.equal(w.server.requests.length, before, "no request made offline");
  });

  it("an unknown image is an error naming it", async () => {
    const run = await w.cli(["mirror", "nope", "--to", join(w.root, "x")]);
    assertOneError(run, /nope/);
  });

  it("interrupted while downloading, then run again: the download resumes", async () => {
    const size = published.archive.length;
    w.server.setFault(published.path, { kind: "stall", afterBytes: 2 << 20, times: 1 });
    const dir = join(w.root, "resume");
    const { child, closed } = w.startCli(["mirror", "big", "--to", dir]);
    await w.waitForPart("big-1.0.tar.gz", 1 << 20);
    child.kill("SIGKILL");
    await closed;
    const run = await w.cli(["mirror", "big", "--to", dir]);
    assert.equal(run.code, 0, run.stderr);
    const requests = w.server.requestsFor(published.path);
    assert.match(String(requests.at(-1)?.headers.range), /^bytes=[1-9]\d*-$/, "resumed by Range");
    assert.ok(w.server.bytesSent(published.path) < size * 1.5, "not downloaded twice");
    assert.deepEqual(await pullFrom(w.root, join(dir, "registry.toml"), "big"), big);
  });
});

describe("mirror --to oci://", { skip: missingRegistry() }, () => {
  let w: World;
  const saved = { ...process.env };
  before(async () => {
    w = await threeImages();
    process.env.DOCKER_CONFIG = join(w.root, "no-docker-config");
  });
  after(async () => {
    process.env = saved;
    await closeWorld(w);
  });

  it("pushes one tag per version; pulls work with the original stopped; a second run sends nothing", async () => {
    const registry = await startDockerRegistry();
    try {
      const file = join(w.root, "oci.toml");
      const to = `oci://${registry.host}/guests`;
      const env = { DOCKER_CONFIG: join(w.root, "no-docker-config") };
      const run = await w.cli(["mirror", "--to", to, "--registry-file", file], { env });
      assert.equal(run.code, 0, run.stderr);
      const written = parseRegistry(await readFile(file, "utf8"), file).images;
      assert.equal(written.length, 3);
      for (const e of written) {
        const pinned = new RegExp(
          `^oci://${registry.host}/guests/${e.name}:${e.version.replace(".", "\\.")}@sha256:[0-9a-f]{64}$`,
        );
        assert.match(e.url, pinned);
      }
      const pushes = (log: string) =>
        log.split("\n").filter((l) => /"(PUT|PATCH|POST) \/v2\//.test(l)).length;
      const sent = pushes(registry.log());
      assert.ok(sent > 0);
      const sessions = await readdir(join(w.store, ".axvisor-image", "uploads")).catch(() => []);
      assert.deepEqual(sessions, [], "no upload session left behind");

      const again = await w.cli(["mirror", "--to", to, "--registry-file", file], { env });
      assert.equal(again.code, 0, again.stderr);
      assert.equal(pushes(registry.log()), sent, "nothing pushed again");
      assert.deepEqual(
        parseRegistry(await readFile(file, "utf8"), file).images,
        written,
        "the same entries",
      );

      await w.server.close();
      assert.deepEqual(await pullFrom(w.root, file, "linux"), KERNELS["linux:2.0"]);
      assert.deepEqual(await pullFrom(w.root, file, "arceos:0.1"), KERNELS["arceos:0.1"]);
    } finally {
      await registry.close();
    }
  });

  it("killed mid-upload, then run again: the upload goes on where the registry stands", async (t) => {
    // Five 4 MiB chunks: a session is saved once the registry acknowledges the first.
    // A world of its own: the test before stops its world's server.
    const w = await startWorld();
    const rootfs = randomBytes(18 << 20);
    await w.publish("big", "1.0", [{ name: "kernel", data: rootfs }]);
    assert.equal((await w.cli(["-q", "sync"])).code, 0);
    const registry = await startDockerRegistry();
    try {
      const file = join(w.root, "big-oci.toml");
      const args = [
        "mirror",
        "big",
        "--to",
        `oci://${registry.host}/kill`,
        "--registry-file",
        file,
      ];
      const uploads = join(w.store, ".axvisor-image", "uploads");
      const { child, closed } = w.startCli(args);
      // Saved sessions, not the temporary file one is written through.
      const sessions = async () =>
        (await readdir(uploads).catch(() => [] as string[])).filter((n) => n.endsWith(".json"));
      while ((await sessions()).length === 0 && child.exitCode === null) await sleep(2);
      child.kill("SIGKILL");
      await closed;
      assert.equal(child.signalCode, "SIGKILL", "killed while uploading");
      assert.equal((await sessions()).length, 1, "the session of the cut upload is kept");

      // The registry writes its access log a little after it answers: wait for it to settle.
      const settled = async () => {
        for (let last = -1; registry.log().length !== last; await sleep(300)) {
          last = registry.log().length;
        }
        return registry.log();
      };
      const before = (await settled()).length;
      const run = await w.cli(args);
      assert.equal(run.code, 0, run.stderr);
      // The registry says where the cut upload stands (GET), and the rest is sent. Distribution
      // refuses to go on when the kill cut a chunk midway or came before its acknowledgement was
      // saved (which of the two the kill hits is up to the clock): the blob is then sent again
      // from the start, with a notice. Either way the mirror ends with the right bytes.
      const second = (await settled()).slice(before);
      const asked = (method: string) =>
        second.split("\n").filter((l) => l.includes(`"${method} /v2/kill/big/blobs/uploads/`));
      const patches = asked("PATCH").length;
      if (asked("GET").length === 0) {
        // Killed after the last byte went up: the registry has the blob, nothing is sent.
        t.diagnostic("killed after the last byte");
        assert.equal(patches + asked("PUT").length, 0, second);
      } else if (/sending it from the start/.test(run.stderr)) {
        assert.match(
          run.stderr,
          /^big:1\.0: the registry cannot go on with the cut upload of sha256:/m,
        );
        t.diagnostic("the registry refused to go on: started over");
        assert.equal(patches, 4, "started over: every chunk but the last");
        assert.equal(asked("POST").length, 2, "a new upload (and the config's)");
      } else {
        t.diagnostic(`resumed: ${patches} of 4 chunks sent again`);
        assert.ok(patches < 4, `resumed: ${patches} of 4 chunks sent again`);
        assert.equal(asked("POST").length, 1, "no new upload (only the config's)");
      }
      assert.deepEqual(await sessions(), [], "the session is gone once the blob is in");
      assert.deepEqual(await pullFrom(w.root, file, "big"), rootfs);
    } finally {
      await registry.close();
      await closeWorld(w);
    }
  });
});

describe("mirror --to oci://: failures", () => {
  let w: World;
  before(async () => {
    w = await threeImages();
  });
  after(() => closeWorld(w));

  it("an unreachable registry fails at once, before anything is downloaded", async () => {
    const port = await closedPort();
    const file = join(w.root, "out.toml");
    const run = await w.cli([
      "mirror",
      "--to",
      `oci://127.0.0.1:${port}/guests`,
      "--registry-file",
      file,
    ]);
    assertOneError(run, new RegExp(`127\\.0\\.0\\.1:${port}`));
    assert.equal(archiveRequests(w), 0, "nothing downloaded for an unreachable target");
  });

  it("usage errors: no registry file, a tag in --to", async () => {
    const noFile = await w.cli(["mirror", "--to", "oci://127.0.0.1:1/guests"]);
    assert.equal(noFile.code, 2, noFile.stderr);
    assert.match(noFile.stderr, /--registry-file/);
    // A URL is no file to write (it was made a folder named `https:`).
    const url = await w.cli(
      ["mirror", "--to", join(w.root, "by-url"), "--registry-file", "https://example.org/r.toml"],
      {
        cwd: w.root,
      },
    );
    assert.equal(url.code, 2, url.stderr);
    assert.match(
      url.stderr,
      /^error: mirror --registry-file https:\/\/example\.org\/r\.toml: give the path of a file to write$/m,
    );
    assert.ok(!existsSync(join(w.root, "https:")), "no folder named https:");
    const tagged = await w.cli([
      "mirror",
      "--to",
      "oci://127.0.0.1:1/guests:v1",
      "--registry-file",
      join(w.root, "f.toml"),
    ]);
    assert.equal(tagged.code, 2, tagged.stderr);
    assert.match(tagged.stderr, /not a tag/);
    const port = await w.cli([
      "mirror",
      "--to",
      "oci://127.0.0.1:99999/guests",
      "--registry-file",
      join(w.root, "f.toml"),
    ]);
    for (const to of ["https://web.lab/guests", "file:///srv/guests", ""]) {
      const run = await w.cli(["mirror", "--to", to], { cwd: w.root });
      assert.equal(run.code, 2, `${to}: ${run.stderr}`);
      assert.match(run.stderr, /^error: mirror --to .*a directory or oci:\/\/HOST\/REPO/m);
    }
    assert.deepEqual(
      (await readdir(w.root)).filter((name) => /^(https?|file):$/.test(name)),
      [],
      "no folder named after a URL scheme",
    );
    assert.equal(port.code, 2, port.stderr);
    assert.match(
      port.stderr,
      /^error: invalid OCI reference .*"127\.0\.0\.1:99999" is not a host/m,
    );
  });
  it("a registry answering an upload with an invalid Location: one error naming the image", async () => {
    const server = http.createServer((req, res) => {
      req.resume();
      req.on("end", () => {
        if (req.method === "POST") res.writeHead(202, { location: "http://[not-a-url" });
        else res.writeHead(req.url === "/v2/" ? 200 : 404);
        res.end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    try {
      const { port } = server.address() as AddressInfo;
      const run = await w.cli([
        "mirror",
        "linux:1.0",
        "--to",
        `oci://127.0.0.1:${port}/guests`,
        "--registry-file",
        join(w.root, "hostile.toml"),
      ]);
      assertOneError(run, /^error: linux:1\.0: .*invalid .*http:\/\/\[not-a-url/m);
      assert.doesNotMatch(run.stderr, /internal error/);
    } finally {
      server.close();
    }
  });
});
