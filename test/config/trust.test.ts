/** `[[trust]]` tables (src/config/trust.ts): parsing them, and which keys a registry gets. */
import assert from "node:assert/strict";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, it } from "node:test";
import { resolveConfig } from "../../src/config/config.js";
import { parseTrustTables, pinnedKeys } from "../../src/config/trust.js";
import { generateSecretKey } from "../../src/minisign-key.js";
import { toLocation } from "../../src/registry/location.js";
import { tempDir } from "../helpers/images.js";

describe("[[trust]] tables", () => {
  it("pins the keys of every table whose prefix matches, each key once", async () => {
    const [a, b] = await Promise.all([generateSecretKey(undefined), generateSecretKey(undefined)]);
    const [keyA, keyB] = [a.key.publicKey.text, b.key.publicKey.text];
    const rules = parseTrustTables(
      [
        { registry: "https://example.org/", keys: [keyA] },
        { registry: "https://example.org/stable/", keys: [keyB, keyA] },
      ],
      "/x/.image.toml",
    );
    const ids = (url: string) => pinnedKeys(rules, url).map((k) => k.text);
    assert.deepEqual(ids("https://example.org/stable/default.toml"), [keyA, keyB]);
    assert.deepEqual(ids("https://example.org/testing/default.toml"), [keyA]);
    assert.deepEqual(ids("https://example.com/default.toml"), []);
  });

  it("matches a prefix only at a boundary: a host, path segment or name is never matched by its beginning", async () => {
    const { key } = await generateSecretKey(undefined);
    const text = key.publicKey.text;
    const rules = parseTrustTables(
      [
        { registry: "https://example.org", keys: [text] },
        { registry: "https://github.io/team", keys: [text] },
        { registry: "/srv/regs", keys: [text] },
        { registry: "tg", keys: [text] },
      ],
      "/x/.image.toml",
    );
    const pinned = (location: string) => pinnedKeys(rules, location).length;
    assert.equal(pinned("https://example.org/registry.toml"), 1);
    assert.equal(pinned("https://example.org"), 1);
    assert.equal(pinned("https://github.io/team/registry.toml"), 1);
    assert.equal(pinned("https://github.io/team?ref=main"), 1);
    assert.equal(pinned("/srv/regs/main.toml"), 1);
    // Another publisher's registry gets none of these keys: none of them may sign it.
    assert.equal(pinned("https://example.org.evil.com/registry.toml"), 0);
    assert.equal(pinned("https://example.org:8443/registry.toml"), 0);
    assert.equal(pinned("https://example.orgx/registry.toml"), 0);
    assert.equal(pinned("https://github.io/team-evil/registry.toml"), 0);
    assert.equal(pinned("/srv/regs-other/main.toml"), 0);
    assert.equal(pinned("/srv/regs.toml"), 0);
    assert.equal(pinned("tgos"), 0);
  });

  it("refuses a malformed table or key with one line naming the file and the entry", () => {
    const cases: [unknown, RegExp][] = [
      [{ registry: "https://x/" }, /^\/x\/\.image\.toml: trust must be \[\[trust\]\] tables$/],
      [[{ registry: "", keys: ["RWQ"] }], /trust\[0\] must have exactly a non-empty "registry"/],
      [[{ registry: "https://x/", keys: [] }], /trust\[0\] must have exactly/],
      [[{ registry: "https://x/", keys: ["RWQ"], extra: 1 }], /trust\[0\] must have exactly/],
      [[{ registry: "https://x/", keys: [7] }], /trust\[0\]\.keys\[0\] must be a string/],
      [
        [{ registry: "https://x/", keys: ["RWQnot-a-key"] }],
        /^\/x\/\.image\.toml: trust\[0\]\.keys\[0\]: not a minisign public key/,
      ],
    ];
    for (const [value, expected] of cases) {
      assert.throws(
        () => parseTrustTables(value, "/x/.image.toml"),
        (err: Error) => {
          assert.match(err.message, expected);
          assert.doesNotMatch(err.message, /\n/);
          return true;
        },
        JSON.stringify(value),
      );
    }
  });

  it("reads a URL prefix as the registry URLs it matches are normalized: host case, default port, escapes", async () => {
    const { key } = await generateSecretKey(undefined);
    const { path: dir, cleanup } = await tempDir();
    try {
      const prefixes = ["HTTPS://Example.ORG:443/reg/", "https://example.org/my registry/"];
      await writeFile(
        join(dir, ".image.toml"),
        prefixes
          .map((p) => `[[trust]]\nregistry = "${p}"\nkeys = ["${key.publicKey.text}"]\n`)
          .join(""),
      );
      const { config } = await resolveConfig({ cwd: dir, env: {} });
      const pinned = (url: string) => pinnedKeys(config.trust ?? [], url, toLocation(url)).length;
      assert.equal(pinned("https://example.org/reg/default.toml"), 1);
      assert.equal(pinned("https://EXAMPLE.org/reg/default.toml"), 1);
      assert.equal(pinned("https://example.org/my%20registry/default.toml"), 1);
      assert.equal(pinned("https://example.org/other/default.toml"), 0);
    } finally {
      await cleanup();
    }
  });

  it("reads a relative path prefix against the configuration file's directory, as registry paths", async () => {
    const { key } = await generateSecretKey(undefined);
    const { path: dir, cleanup } = await tempDir();
    try {
      const project = join(dir, "project");
      await mkdir(join(project, "sub"), { recursive: true });
      await writeFile(
        join(project, ".image.toml"),
        [
          'registries = ["regs/main.toml", "regs-other/main.toml", "tgos"]',
          "[[trust]]",
          'registry = "./regs/"',
          `keys = ["${key.publicKey.text}"]`,
          "[[trust]]",
          'registry = "tgos"',
          `keys = ["${key.publicKey.text}"]`,
          "",
        ].join("\n"),
      );
      // Found from a subdirectory: the prefix is the config file's, not the working directory's.
      const { config } = await resolveConfig({ cwd: join(project, "sub"), env: {} });
      const [main, other] = config.registry as string[];
      assert.equal(main, join(project, "regs", "main.toml"));
      const pinned = (...at: string[]) => pinnedKeys(config.trust ?? [], ...at).length;
      assert.equal(pinned(main!), 1, "the relative prefix pins the registry under it");
      assert.equal(pinned(other!), 0, "a trailing / keeps regs-other/ out");
      assert.equal(pinned("tgos"), 1, "a built-in name stays a name");
    } finally {
      await cleanup();
    }
  });
});
