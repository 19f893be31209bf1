/**
 * Pinning and offline runs through the CLI: `lock` writes the exact images, `pull --locked` (and
 * `pull` with no names beside a lock file) pulls them with no registry, a registry disagreeing
 * with the lock is a loud error, `--offline` never touches the network, and `ci-key` gives the
 * cache key and path of the restore-then-pull flow.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdir, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { join, relative } from "node:path";
import { afterEach, beforeEach, describe, it } from "node:test";
import { parse } from "smol-toml";
import { closedPort } from "../helpers/fault-server.js";
import { makeTarGz, registryToml, sha256 } from "../helpers/images.js";
import { startWorld, type World } from "../helpers/world.js";

const OLD = "2025-01-01T00:00:00Z";
const NEW = "2026-01-01T00:00:00Z";

interface LockDoc {
  version: number;
  images: Record<string, string>[];
}

async function readLock(path: string): Promise<LockDoc> {
  return parse(await readFile(path, "utf8")) as unknown as LockDoc;
}

/** Every file under `dir`, relative, sorted (none when it does not exist). */
async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true }).catch(() => []);
  return entries.sort();
}

describe("lock, pull --locked, --offline and ci-key", () => {
  let w: World;
  let lockPath: string;
  beforeEach(async () => {
    w = await startWorld();
    lockPath = join(w.root, "axvisor-image.lock");
    await w.publish("linux", "1.0", [{ name: "kernel", data: "linux 1" }], { released_at: OLD });
    await w.publish("arceos", "0.3", [{ name: "kernel", data: "arceos" }], { released_at: OLD });
  });
  afterEach(() => w.close());

  it("lock writes name, version, sha256, arch, url and registry of each image, beside the config", async () => {
    await writeFile(join(w.root, ".image.toml"), "");
    const sub = join(w.root, "sub");
    await mkdir(sub);
    const run = await w.cli(["lock", "linux", "arceos:0.3"], { cwd: sub });
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(run.stdout.split("\n"), ["arceos:0.3", "linux:1.0", ""]);
    const doc = await readLock(lockPath);
    assert.equal(doc.version, 1);
    const linux = w.server.url("/files/linux-1.0.tar.gz");
    assert.deepEqual(
      { ...doc.images[1] },
      {
        name: "linux",
        version: "1.0",
        sha256: sha256(await makeTarGz([{ name: "kernel", data: "linux 1" }])),
        arch: "aarch64",
        url: linux,
        registry: w.registryUrl,
      },
    );
    assert.equal(doc.images[0]?.name, "arceos");
  });

  it("lock without names re-resolves and moves nothing; --update moves to the newest", async () => {
    assert.equal((await w.cli(["lock", "linux"])).code, 0);
    await w.publish("linux", "2.0", [{ name: "kernel", data: "linux 2" }], { released_at: NEW });
    await w.cli(["sync"]);
    const before = await readFile(lockPath, "utf8");

    const same = await w.cli(["lock"]);
    assert.equal(same.code, 0, same.stderr);
    assert.equal(same.stdout, "linux:1.0\n");
    assert.equal(await readFile(lockPath, "utf8"), before);
    const named = await w.cli(["lock", "linux"]);
    assert.equal(named.stdout, "linux:1.0\n", "a locked name stays where it is");

    const moved = await w.cli(["lock", "--update"]);
    assert.equal(moved.code, 0, moved.stderr);
    assert.equal(moved.stdout, "linux:2.0\n");
    assert.match(moved.stderr, /linux: 1\.0 -> 2\.0/);
    assert.equal((await readLock(lockPath)).images.length, 1);

    const pinned = await w.cli(["lock", "linux:1.0"]);
    assert.equal(pinned.stdout, "linux:1.0\nlinux:2.0\n", "an exact version is added");
  });

  it("lock without names and without a lock file is a usage error", async () => {
    const run = await w.cli(["lock"]);
    assert.equal(run.code, 2);
    assert.match(run.stderr, /^error: no lock file at .*axvisor-image\.lock$/m);
    assert.match(run.stderr, /^hint: name the images to lock/m);
    const unknown = await w.cli(["lock", "nosuch"]);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /^error: image not found: nosuch$/m);
    assert.deepEqual(await filesUnder(lockPath), []);
  });

  it("pull --locked needs no registry: only the archives are requested", async () => {
    assert.equal((await w.cli(["lock", "linux", "arceos"])).code, 0);
    await rm(w.store, { recursive: true, force: true });
    const served = w.server.requests.length;
    const down = `http://127.0.0.1:${await closedPort()}/registry.toml`;
    const run = await w.cli(["-R", down, "pull", "--locked"]);
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(run.stdout.split("\n"), [
      join(w.store, "arceos-0.3"),
      join(w.store, "linux-1.0"),
      "",
    ]);
    const paths = w.server.requests.slice(served).map((r) => r.path);
    assert.deepEqual(paths.sort(), ["/files/arceos-0.3.tar.gz", "/files/linux-1.0.tar.gz"]);
    assert.equal(await readFile(join(w.store, "linux-1.0", "kernel"), "utf8"), "linux 1");
    assert.ok(!(await filesUnder(w.store)).includes("images.toml"), "no sync happened");

    await rm(w.store, { recursive: true, force: true });
    const plain = await w.cli(["-R", down, "pull"]);
    assert.equal(plain.code, 0, plain.stderr);
    assert.equal(plain.stdout, run.stdout, "pull with no names takes the lock file");
  });

  it("pull --locked NAME pulls that locked entry; a name the lock lacks is an error", async () => {
    assert.equal((await w.cli(["lock", "linux"])).code, 0);
    const one = await w.cli(["pull", "--locked", "linux", "--json"]);
    assert.equal(one.code, 0, one.stderr);
    assert.equal((JSON.parse(one.stdout) as { version: string }[])[0]?.version, "1.0");
    const other = await w.cli(["pull", "--locked", "arceos"]);
    assert.equal(other.code, 1);
    assert.match(
      other.stderr,
      /^error: image arceos is not in the lock file .*axvisor-image\.lock$/m,
    );
    assert.match(other.stderr, /^hint: lock it first: `axvisor-image lock arceos`$/m);
    const version = await w.cli(["pull", "--locked", "arceos:0.3"]);
    assert.equal(version.code, 1);
    assert.match(version.stderr, /^error: image arceos:0\.3 is not in the lock file /m);
  });

  it("pull --locked NAME pulls it as the locked NAME:VERSION, never over the tree of NAME", async () => {
    assert.equal((await w.cli(["lock", "linux"])).code, 0);
    await w.publish("linux", "2.0", [{ name: "kernel", data: "linux 2" }], { released_at: NEW });
    assert.equal((await w.cli(["sync"])).code, 0);
    assert.equal((await w.cli(["pull", "linux"])).stdout, `${join(w.store, "linux")}\n`);
    const run = await w.cli(["pull", "--locked", "linux"]);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(
      run.stdout,
      `${join(w.store, "linux-1.0")}\n`,
      "the locked entry, as pulled by --locked",
    );
    assert.equal(await readFile(join(w.store, "linux-1.0", "kernel"), "utf8"), "linux 1");
    assert.equal(
      await readFile(join(w.store, "linux", "kernel"), "utf8"),
      "linux 2",
      "NAME untouched",
    );
    const served = w.server.requests.length;
    const again = await w.cli(["pull", "--locked"]);
    assert.equal(again.stdout, run.stdout, "the same place as pull --locked with no names");
    assert.equal(w.server.requests.length, served, "found in place: no request");
  });

  it("pull with no names and no lock file, or --locked without one, fails clearly", async () => {
    const bare = await w.cli(["pull"]);
    assert.equal(bare.code, 2);
    assert.match(bare.stderr, /^error: pull needs an image name, or --arch ARCH$/m);
    const locked = await w.cli(["pull", "--locked", "--lock", join(w.root, "none.lock")]);
    assert.equal(locked.code, 1);
    assert.match(locked.stderr, /^error: no lock file at .*none\.lock$/m);
    const emptyLock = join(w.root, "empty.lock");
    await writeFile(emptyLock, "version = 1\n");
    const empty = await w.cli(["pull", "--locked", "--lock", emptyLock]);
    assert.equal(empty.code, 1, "an empty lock is a mistake, not a job done");
    assert.match(
      empty.stderr,
      /^error: the lock file .*empty\.lock lists no images: nothing to pull$/m,
    );
  });

  it("a registry disagreeing with the lock is a loud error everywhere, and nothing moves", async () => {
    assert.equal((await w.cli(["lock", "linux"])).code, 0);
    const locked = await readFile(lockPath, "utf8");
    const lockedSha = (await readLock(lockPath)).images[0]?.sha256;
    // Same name and version, another archive.
    await w.publish("linux", "1.0", [{ name: "kernel", data: "tampered" }], { released_at: OLD });
    await w.cli(["sync"]);
    const served = w.server.requests.length;

    const relock = await w.cli(["lock"]);
    assert.equal(relock.code, 1);
    assert.match(
      relock.stderr,
      new RegExp(
        `^error: the registry .* disagrees with the lock file: linux:1\\.0 is locked with sha256 ${lockedSha} but lists [0-9a-f]{64}$`,
        "m",
      ),
    );
    assert.equal(await readFile(lockPath, "utf8"), locked, "the lock file is unchanged");

    for (const args of [["pull", "--locked"], ["pull"], ["pull", "linux:1.0"], ["ci-key"]]) {
      const run = await w.cli(args);
      assert.equal(run.code, 1, `${args.join(" ")}: ${run.stderr}`);
      assert.match(
        run.stderr,
        /disagrees with the lock file: linux:1\.0 is locked/,
        args.join(" "),
      );
    }
    assert.deepEqual(
      w.server.requests.slice(served).filter((r) => r.path.startsWith("/files/")),
      [],
      "nothing downloaded",
    );
    assert.ok(!(await filesUnder(w.store)).some((f) => f.startsWith("linux")));

    const accepted = await w.cli(["lock", "--update", "linux"]);
    assert.equal(accepted.code, 0, accepted.stderr);
    assert.notEqual((await readLock(lockPath)).images[0]?.sha256, lockedSha);
  });

  it("--offline: a locked entry missing from the store fails naming it, with no request", async () => {
    assert.equal((await w.cli(["lock", "linux", "arceos"])).code, 0);
    await rm(w.store, { recursive: true, force: true });
    const served = w.server.requests.length;
    const run = await w.cli(["--offline", "pull", "--locked"]);
    assert.equal(run.code, 1);
    assert.match(
      run.stderr,
      /^error: arceos:0\.3: no verified copy in the store, and offline mode forbids downloading$/m,
    );
    assert.match(
      run.stderr,
      /^error: linux:1\.0: no verified copy in the store, and offline mode forbids downloading$/m,
    );
    assert.match(run.stderr, /^hint: pull it once with the network/m);
    assert.equal(run.stdout, "");
    assert.equal(w.server.requests.length, served, "no request at all");
    assert.deepEqual(
      (await filesUnder(w.store)).filter((f) => !f.startsWith(".axvisor-image")),
      [],
      "nothing but bookkeeping in the store",
    );
  });

  it("--offline and AXVISOR_IMAGE_OFFLINE=1 pull from the store without any request", async () => {
    assert.equal((await w.cli(["lock", "linux"])).code, 0);
    assert.equal((await w.cli(["pull", "--locked"])).code, 0);
    await writeFile(join(w.store, ".last_sync"), "1"); // stale: an online run would re-sync
    const served = w.server.requests.length;
    const flag = await w.cli(["--offline", "pull", "--locked"]);
    assert.equal(flag.code, 0, flag.stderr);
    assert.equal(flag.stdout, `${join(w.store, "linux-1.0")}\n`);
    const env = await w.cli(["pull", "linux:1.0"], { env: { AXVISOR_IMAGE_OFFLINE: "1" } });
    assert.equal(env.code, 0, env.stderr);
    const ls = await w.cli(["--offline", "ls"]);
    assert.equal(ls.code, 0, ls.stderr);
    assert.doesNotMatch(ls.stderr, /syncing/);
    assert.equal(w.server.requests.length, served, "no request at all");
  });

  it("--offline keeps a present archive that no longer matches, and downloads nothing", async () => {
    assert.equal((await w.cli(["pull", "linux:1.0", "--no-extract"])).code, 0);
    const archive = join(w.store, "linux-1.0.tar.gz");
    await writeFile(archive, "not the archive");
    const served = w.server.requests.length;
    const run = await w.cli(["--offline", "pull", "linux:1.0"]);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /^error: linux:1\.0: no verified copy in the store/m);
    assert.equal(await readFile(archive, "utf8"), "not the archive");
    assert.equal(w.server.requests.length, served);
  });

  it("--offline sync fails clearly; offline with no registry in the store names it", async () => {
    const sync = await w.cli(["--offline", "sync"]);
    assert.equal(sync.code, 1);
    assert.match(
      sync.stderr,
      /^error: syncing the registry .* needs the network, and offline mode forbids it$/m,
    );
    const pull = await w.cli(["pull", "linux"], { env: { AXVISOR_IMAGE_OFFLINE: "1" } });
    assert.equal(pull.code, 1);
    assert.match(
      pull.stderr,
      /^error: no image registry in the store: .*images\.toml does not exist$/m,
    );
    const check = await w.cli(["--offline", "registry", "check", w.registryUrl]);
    assert.equal(check.code, 1);
    assert.match(
      check.stderr,
      /^error: checking .* needs the network, and offline mode forbids it$/m,
    );
    const archive = join(w.root, "a.tar.gz");
    await writeFile(archive, await makeTarGz([{ name: "kernel", data: "k" }]));
    const publish = await w.cli([
      "--offline",
      "publish",
      archive,
      ...["--name", "p", "--image-version", "1", "--arch", "aarch64", "--description", "d"],
      ...["--to", `oci://127.0.0.1:${w.server.port}/guests/p:1`],
      ...["--registry-file", join(w.root, "published.toml")],
    ]);
    assert.equal(publish.code, 1);
    assert.match(publish.stderr, /^error: publish --to needs the network/m);
    const config = await w.cli(["config"], { env: { AXVISOR_IMAGE_OFFLINE: "1" } });
    assert.match(config.stdout, /^offline = true {2}# env$/m);
    const bad = await w.cli(["ls"], { env: { AXVISOR_IMAGE_OFFLINE: "maybe" } });
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /^error: AXVISOR_IMAGE_OFFLINE must be 1 or 0, got "maybe"$/m);
    assert.equal(w.server.requests.length, 0);
  });

  it("--offline never asks an OCI registry for a missing image's file name", async () => {
    const port = await closedPort();
    const lock = [
      "version = 1",
      "[[images]]",
      'name = "oci-guest"',
      'version = "1"',
      `sha256 = "${"a".repeat(64)}"`,
      'arch = "aarch64"',
      `url = "oci://127.0.0.1:${port}/guests/oci-guest:1"`,
      'registry = "hand-written"',
    ].join("\n");
    await writeFile(lockPath, lock);
    const run = await w.cli(["--offline", "pull"]);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /^error: oci-guest:1: no verified copy in the store/m);
    assert.doesNotMatch(run.stderr, /refused|ECONNREFUSED/);
  });

  it("a hostile lock file is one clear error, never a crash", async () => {
    const cases: [string, RegExp][] = [
      ["version = 1\n[[images]\n", /^error: .*axvisor-image\.lock:2:\d+: /m],
      ["version = 2\n", /version must be 1/],
      ["version = 1\nsecret = 1\n", /unknown key "secret"/],
      ['version = 1\n[[images]]\nname = "x"\n', /images\[0\]: version must be a non-empty string/],
      [
        `version = 1\n[[images]]\nname = "../x"\nversion = "1"\nsha256 = "${"a".repeat(64)}"\narch = "a"\nurl = "http://h/x"\nregistry = "r"\n`,
        /images\[0\]: name "\.\.\/x" may only contain/,
      ],
      [
        `version = 1\n[[images]]\nname = "x"\nversion = "1"\nsha256 = "abc"\narch = "a"\nurl = "http://h/x"\nregistry = "r"\n`,
        /images\[0\]: sha256 must be 64 hex digits/,
      ],
      [
        `version = 1\n[[images]]\nname = "x"\nversion = "1"\nsha256 = "${"a".repeat(64)}"\narch = "a"\nurl = "ftp://h/x"\nregistry = "r"\n`,
        /images\[0\]: url "ftp:\/\/h\/x" has an unsupported scheme/,
      ],
      [
        `version = 1\n[[images]]\nname = "x"\nversion = "1"\nsha256 = "${"a".repeat(64)}"\narch = "a"\nurl = "file:///etc/passwd"\nregistry = "https://example.org/r.toml"\n`,
        /images\[0\]: url "file:\/\/\/etc\/passwd" is a local file, refused for an image of the remote registry/,
      ],
    ];
    for (const [text, expected] of cases) {
      await writeFile(lockPath, text);
      const run = await w.cli(["pull"]);
      assert.equal(run.code, 1, `${text}: ${run.stderr}`);
      assert.match(run.stderr, expected);
      assert.equal(run.stderr.split("\n").filter((l) => l.startsWith("error:")).length, 1);
    }
    await writeFile(lockPath, Buffer.from([0xff, 0xfe, 0x00]));
    assert.match((await w.cli(["pull"])).stderr, /^error: lock file .* is not UTF-8 text$/m);
    await rm(lockPath);
    execFileSync("mkfifo", [lockPath]);
    const fifo = await w.cli(["pull"], { timeoutMs: 20_000 });
    assert.equal(fifo.code, 1, "a FIFO is refused, never waited on");
    assert.match(
      fifo.stderr,
      /^error: lock file .*axvisor-image\.lock: a FIFO, not a regular file$/m,
    );
  });

  it("ci-key: one key per set of images, in GitHub, GitLab and JSON forms", async () => {
    assert.equal((await w.cli(["lock", "linux", "arceos"])).code, 0);
    const github = await w.cli(["ci-key"]);
    assert.equal(github.code, 0, github.stderr);
    const [keyLine, pathLine] = github.stdout.trimEnd().split("\n");
    assert.match(keyLine ?? "", /^key=axvisor-image-v1-[0-9a-f]{32}$/);
    assert.equal(pathLine, `path=${w.store}`);
    const key = keyLine?.slice(4);

    const named = await w.cli(["ci-key", "linux:1.0", "arceos:0.3"]);
    assert.equal(named.stdout, github.stdout, "the named images give the lock's key");
    const twice = await w.cli(["ci-key", "linux:1.0", "arceos:0.3", "linux:1.0"]);
    assert.equal(twice.stdout, github.stdout, "an image named twice counts once");
    const json = await w.cli(["ci-key", "--format", "json"]);
    const doc = JSON.parse(json.stdout) as { key: string; path: string; images: unknown[] };
    assert.equal(doc.key, key);
    assert.equal(doc.path, w.store);
    assert.equal(doc.images.length, 2);

    const gitlab = await w.cli(["ci-key", "--format", "gitlab"]);
    assert.equal(gitlab.code, 0, gitlab.stderr);
    assert.equal(
      gitlab.stdout,
      `AXVISOR_IMAGE_CACHE_KEY=${key}\nAXVISOR_IMAGE_CACHE_PATH=${relative(w.root, w.store)}\n`,
    );
    await mkdir(join(w.root, "project"));
    const project = await w.cli(["ci-key", "--format", "gitlab", "--lock", lockPath], {
      cwd: join(w.root, "project"),
    });
    assert.equal(project.code, 2);
    assert.match(project.stderr, /^error: the store .* is not inside the project directory/m);
    assert.match(project.stderr, /^hint: GitLab caches only paths inside the project/m);

    await w.publish("linux", "2.0", [{ name: "kernel", data: "linux 2" }], { released_at: NEW });
    await w.cli(["sync"]);
    assert.equal((await w.cli(["lock", "--update"])).code, 0);
    const moved = await w.cli(["ci-key"]);
    assert.notEqual(moved.stdout, github.stdout, "another image, another key");
    const bad = await w.cli(["ci-key", "--format", "circle"]);
    assert.equal(bad.code, 2);
  });

  it("restore-then-pull: a restored store makes pull --locked cost no request", async () => {
    assert.equal((await w.cli(["lock", "linux", "arceos"])).code, 0);
    assert.equal((await w.cli(["pull", "--locked"])).code, 0); // the cold run, then the cache is saved
    const cache = join(w.root, "cache.tar");
    execFileSync("tar", ["-cf", cache, "-C", w.root, "store"]);
    await rm(w.store, { recursive: true, force: true });
    execFileSync("tar", ["-xf", cache, "-C", w.root]); // the next job restores it
    const served = w.server.requests.length;
    const down = `http://127.0.0.1:${await closedPort()}/registry.toml`;
    const hit = await w.cli(["-R", down, "pull", "--locked"]);
    assert.equal(hit.code, 0, hit.stderr);
    assert.equal(w.server.requests.length, served, "a cache hit makes no request");
  });
  it("ci-key refuses a store path it cannot print as it is, rather than print another path", async () => {
    assert.equal((await w.cli(["lock", "linux"])).code, 0);
    for (const store of [join(w.root, "st\tore"), join(w.root, "st\u001bore")]) {
      for (const format of ["github", "gitlab"]) {
        const run = await w.cli(["-S", store, "ci-key", "--format", format]);
        assert.equal(run.code, 2, `${format}: ${run.stdout}`);
        assert.equal(run.stdout, "");
        assert.match(run.stderr, /^error: the store's path .* holds a control character/m);
      }
      const json = await w.cli(["-S", store, "ci-key", "--format", "json"]);
      assert.equal(json.code, 0, json.stderr);
      assert.equal((JSON.parse(json.stdout) as { path: string }).path, store);
    }
  });
  it("the lock file, meant to be committed, never holds the credentials of a URL", async () => {
    const archive = await makeTarGz([{ name: "kernel", data: "linux 1" }]);
    w.server.setFile(
      "/private/registry.toml",
      registryToml([
        {
          name: "linux",
          version: "1.0",
          url: "../files/linux-1.0.tar.gz",
          sha256: sha256(archive),
        },
      ]),
    );
    const registry = w.server.url("/private/registry.toml").replace("://", "://user:s3cret@");
    const run = await w.cli(["-R", registry, "lock", "linux"]);
    assert.equal(run.code, 0, run.stderr);
    const text = await readFile(lockPath, "utf8");
    assert.doesNotMatch(text, /s3cret|user/);
    const [entry] = (await readLock(lockPath)).images;
    assert.equal(entry?.registry, w.server.url("/private/registry.toml"));
    assert.equal(entry?.url, w.server.url("/files/linux-1.0.tar.gz"));
    assert.match(run.stderr, /^warning: linux:1\.0: the credentials in its URL are not written/m);
    assert.doesNotMatch(run.stderr, /s3cret/);
  });
});
