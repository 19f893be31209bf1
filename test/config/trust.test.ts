/** `[[trust]]` tables (src/config/trust.ts): parsing them, and which keys a registry gets. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseTrustTables, pinnedKeys } from "../../src/config/trust.js";
import { generateSecretKey } from "../../src/minisign-key.js";

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
});
