/** `publish` without a registry server: its checks, and `--url` (nothing uploaded). */
import assert from "node:assert/strict";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { UsageError } from "../../src/errors.js";
import { publish, type PublishOptions } from "../../src/ops/publish.js";
import { parseRegistry } from "../../src/registry/format.js";
import { closedPort } from "../helpers/fault-server.js";
import { makeTarGz, sha256, tempDir } from "../helpers/images.js";

describe("publish", () => {
  let dir: { path: string; cleanup: () => Promise<void> };
  let archive: string;
  let bytes: Buffer;
  let nowhere: string;

  before(async () => {
    dir = await tempDir("axi-oci-publish-");
    archive = join(dir.path, "linux.tar.gz");
    bytes = await makeTarGz([{ name: "kernel", data: "v2" }]);
    await writeFile(archive, bytes);
    nowhere = `oci://127.0.0.1:${await closedPort()}/guests/linux:1.0`;
  });
  after(() => dir.cleanup());

  function options(overrides: Partial<PublishOptions> = {}): PublishOptions {
    return {
      archive,
      name: "linux",
      version: "1.0",
      arch: "aarch64",
      description: "Linux",
      registryFile: join(dir.path, "unused.toml"),
      to: nowhere,
      ...overrides,
    };
  }

  it("refuses bad options before hashing or sending anything", async () => {
    const cases: [Partial<PublishOptions>, RegExp][] = [
      [{ url: "https://example.org/a.tar.gz" }, /exactly one of --to .* and --url/],
      [{ to: undefined }, /exactly one of --to .* and --url/],
      [
        { name: "bad name" },
        /cannot publish image bad name:1\.0: name "bad name" may only contain/,
      ],
      [{ releasedAt: "yesterday" }, /released_at "yesterday" is not an RFC 3339 date-time/],
      [{ to: `oci://h/guests/linux@sha256:${"0".repeat(64)}` }, /publish to a tag, not a digest/],
      [{ to: "oci://h/Guests:1" }, /invalid OCI reference oci:\/\/h\/Guests:1/],
      [{ archive: join(dir.path, "missing.tar.gz") }, /archive .*missing\.tar\.gz does not exist/],
    ];
    for (const [overrides, message] of cases) {
      await assert.rejects(publish(options(overrides)), (err) => {
        assert.ok(err instanceof UsageError, String(err));
        assert.match(err.message, message);
        return true;
      });
    }
  });

  it("with --url uploads nothing, and adds or updates the entry keeping the rest of the file", async () => {
    const registryFile = join(dir.path, "registry.toml");
    const before = [
      "# AxVisor guest images",
      "[[includes]]",
      'url = "v0.0.25.toml"',
      "",
      "[[images]]",
      'name = "nimbos"',
      'version = "0.1"',
      'description = "NimbOS"',
      `sha256 = "${"1".repeat(64)}"`,
      'arch = "x86_64"',
      'url = "https://example.org/nimbos.tar.gz"  # kept',
      "",
    ].join("\n");
    await writeFile(registryFile, before);
    const url =
      "https://github.com/arceos-hypervisor/axvisor-guest/releases/download/v1/linux.tar.gz";
    const first = await publish(
      options({ to: undefined, url, registryFile, releasedAt: "2026-04-10T02:35:51Z" }),
    );
    assert.equal(first.action, "added");
    assert.equal(first.push, undefined);
    const text = await readFile(registryFile, "utf8");
    assert.ok(text.startsWith(before.trimEnd()), "other entries, includes and comments are kept");
    const parsed = parseRegistry(text, registryFile);
    assert.deepEqual(parsed.includes, [{ url: "v0.0.25.toml" }]);
    assert.deepEqual(
      parsed.images.map((i) => [i.name, i.sha256, i.url]),
      [
        ["nimbos", "1".repeat(64), "https://example.org/nimbos.tar.gz"],
        ["linux", sha256(bytes), url],
      ],
    );

    const moved = `${url}.mirror`;
    const second = await publish(options({ to: undefined, url: moved, registryFile }));
    assert.equal(second.action, "updated");
    const updated = parseRegistry(await readFile(registryFile, "utf8"), registryFile).images;
    assert.equal(updated.length, 2);
    assert.equal(updated[1]?.url, moved);
    assert.equal(updated[1]?.released_at, "2026-04-10T02:35:51Z", "unchanged fields are kept");
  });
});
