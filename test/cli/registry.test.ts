/** `registry add` (text-preserving edits) and `registry check` (every problem), through the CLI. */
import assert from "node:assert/strict";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { parseRegistry } from "../../src/registry/format.js";
import { startFaultServer, type FaultServer } from "../helpers/fault-server.js";
import { cliEnv, registryToml, runCli, sha256, tempDir } from "../helpers/images.js";

const SHA_A = "a".repeat(64);
const SHA_B = "b".repeat(64);
const THREE_URL = "https://example.com/three.tgz";

const LAB = `# Guest images for the lab

[[includes]]
url = "older.toml"   # earlier releases

[[images]]
name = "lab_linux"
version = "1.0"
description = "Linux for the lab"   # keep me
sha256 = "${SHA_A}"
arch = "aarch64"
url = "https://example.com/lab_linux-1.0.tar.gz"
released_at = "2025-01-01T00:00:00Z"

# the RTOS comes last
[[images]]
name = "lab_rtos"
version = "1.0"
description = "RTOS for the lab"
sha256 = "${SHA_B}"
arch = "riscv64"
url = "https://example.com/lab_rtos-1.0.tar.gz"
`;

describe("registry add and check", () => {
  let dir: { path: string; cleanup: () => Promise<void> };
  let server: FaultServer;
  const file = (name: string) => join(dir.path, name);
  const cli = (args: string[]) => runCli(args, { cwd: dir.path, env: cliEnv() });
  before(async () => {
    dir = await tempDir();
    server = await startFaultServer();
    await writeFile(file("lab.toml"), LAB);
    await writeFile(
      file("older.toml"),
      registryToml([
        { name: "lab_linux", version: "0.9", url: "https://example.com/o.tgz", sha256: SHA_B },
      ]),
    );
    await writeFile(file("image.tar.gz"), "the archive bytes");
  });
  after(async () => {
    await server.close();
    await dir.cleanup();
  });

  it("add appends a new image, leaving every other line as it was", async () => {
    const run = await cli([
      "registry", "add", "image.tar.gz", "--file", "lab.toml", "--name", "lab_linux",
      "--version", "2.0", "--arch", "aarch64", "--description", "Linux 2",
      "--url", "https://example.com/lab_linux-2.0.tar.gz", "--released-at", "2026-02-03T04:05:06Z",
    ]); // prettier-ignore
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stderr, /^added image lab_linux:2\.0 in lab\.toml/m);
    const text = await readFile(file("lab.toml"), "utf8");
    assert.ok(text.startsWith(LAB), "the old text is kept as it was");
    const added = parseRegistry(text, "lab.toml").images.at(-1);
    assert.deepEqual(added, {
      name: "lab_linux",
      version: "2.0",
      description: "Linux 2",
      sha256: sha256("the archive bytes"),
      arch: "aarch64",
      url: "https://example.com/lab_linux-2.0.tar.gz",
      released_at: "2026-02-03T04:05:06Z",
    });
  });

  it("add updates an existing image in place: only its changed lines move", async () => {
    await writeFile(file("image.tar.gz"), "rebuilt archive");
    const before = await readFile(file("lab.toml"), "utf8");
    const run = await cli([
      "registry", "add", "image.tar.gz", "--file", "lab.toml", "--name", "lab_linux", "--version", "1.0",
    ]); // prettier-ignore
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stderr, /^updated image lab_linux:1\.0/m);
    const after = await readFile(file("lab.toml"), "utf8");
    const changed = after.split("\n").filter((line, i) => line !== before.split("\n")[i]);
    assert.deepEqual(changed, [`sha256 = "${sha256("rebuilt archive")}"`]);
    assert.match(after, /description = "Linux for the lab" {3}# keep me/);
  });

  it("--image-version is the image's version; after add and publish --version is its alias", async () => {
    await writeFile(file("image.tar.gz"), "another build");
    const add = await cli([
      "registry", "add", "image.tar.gz", "--file", "lab.toml", "--name", "lab_linux", "--image-version", "1.0",
    ]); // prettier-ignore
    assert.equal(add.code, 0, add.stderr);
    assert.match(add.stderr, /^updated image lab_linux:1\.0 in lab\.toml/m);
    const help = await cli(["registry", "add", "--help"]);
    assert.match(help.stdout, /--image-version <version>/);
    assert.doesNotMatch(help.stdout, /--version/);
    const missing = await cli([
      "registry", "add", "image.tar.gz", "--file", "lab.toml", "--name", "lab_linux",
    ]); // prettier-ignore
    assert.equal(missing.code, 2);
    assert.match(
      missing.stderr,
      /^error: required option '--image-version <version>' not specified$/m,
    );
    const url = "https://example.com/pub-3.0.tar.gz";
    for (const flag of ["--image-version", "--version"]) {
      const published = await cli([
        "publish", "image.tar.gz", "--name", "pub", flag, "3.0", "--arch", "x86_64",
        "--description", "Published", "--url", url, "--registry-file", "pub.toml",
      ]); // prettier-ignore
      assert.equal(published.code, 0, published.stderr);
      assert.equal(published.stdout, `${url}\n`);
    }
    const entries = parseRegistry(await readFile(file("pub.toml"), "utf8"), "pub.toml").images;
    assert.deepEqual(
      entries.map((e) => `${e.name}:${e.version}`),
      ["pub:3.0"],
    );
    const tool = await cli(["--version"]);
    assert.match(tool.stdout, /^\d+\.\d+\.\d+\n$/);
  });

  it("add refuses a new image without its required fields, naming them", async () => {
    const run = await cli([
      "registry", "add", "image.tar.gz", "--file", "lab.toml", "--name", "lab_new", "--version", "1",
      "--arch", "x86_64",
    ]); // prettier-ignore
    assert.equal(run.code, 2);
    assert.match(
      run.stderr,
      /^error: image lab_new:1 is new in lab\.toml: description, url required$/m,
    );
    const missing = await cli([
      "registry", "add", "nothing.tar.gz", "--file", "lab.toml", "--name", "x", "--version", "1",
    ]); // prettier-ignore
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /^error: archive nothing\.tar\.gz does not exist$/m);
  });

  it("check accepts a good registry with its includes", async () => {
    const run = await cli(["registry", "check", "lab.toml"]);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout, "registry lab.toml: no problems (4 images in 2 files)\n");
  });

  it("check lists every problem with its line, and exits 1", async () => {
    const three = (description: string) =>
      registryToml([{ name: "three", version: "1", description, sha256: SHA_A, url: THREE_URL }]);
    const bad = `[[includes]]
url = "missing.toml"

[[images]]
name = "one"
version = "1"
description = "x"
sha256 = "not-a-digest"
arch = "aarch64"
url = "https://example.com/one.tgz"

[[images]]
name = "two"
version = "1"
description = "x"
sha256 = "${SHA_A}"
arch = "aarch64"

[[images]]
name = "-bad"
version = "1"
description = "x"
sha256 = "${SHA_A}"
arch = "aarch64"
url = "https://example.com/bad.tgz"

${three("x")}
${three("x")}
${three("changed")}
[[images]]
name = "four" version = "1"
`;
    await writeFile(file("bad.toml"), bad);
    const run = await cli(["registry", "check", "bad.toml"]);
    assert.equal(run.code, 1);
    const path = file("bad.toml");
    const lines = run.stdout.trim().split("\n");
    const expected = [
      `${path}:8: image "one": sha256 must be 64 hex digits`,
      `${path}:12: image "two": url is missing`,
      new RegExp(`^${path}:20: images\\[2\\]: name "-bad" `),
      new RegExp(`^${path}:52:\\d+: TOML syntax error: `),
      `${path}: image three:1 is listed twice`,
      `${file("missing.toml")}: no such file (included by ${path})`,
      `image three:1 in ${path} differs from the one in ${path}; keeping the one from ${path}`,
    ];
    assert.equal(lines.length, expected.length, run.stdout);
    expected.forEach((want, i) =>
      typeof want === "string" ? assert.equal(lines[i], want) : assert.match(lines[i]!, want),
    );
    assert.match(run.stderr, /^error: registry bad\.toml: 7 problems \(1 image in 1 file\)$/m);
  });

  it("check --online sends HEAD for every image URL and names those that fail", async () => {
    server.setFile("/good.tar.gz", "bytes");
    const entries = [
      { name: "good", url: server.url("/good.tar.gz"), sha256: SHA_A },
      { name: "gone", url: server.url("/gone.tar.gz"), sha256: SHA_B },
    ];
    server.setFile("/registry.toml", registryToml(entries));
    const url = server.url("/registry.toml");
    const offline = await cli(["registry", "check", url]);
    assert.equal(offline.code, 0, offline.stdout);
    const run = await cli(["registry", "check", "--online", url]);
    assert.equal(run.code, 1);
    assert.equal(
      run.stdout,
      `image gone:0.0.1: ${server.url("/gone.tar.gz")}: HTTP 404 Not Found\n`,
    );
    assert.deepEqual(
      server.requestsFor("/good.tar.gz").map((r) => r.method),
      ["HEAD"],
    );
  });
});
