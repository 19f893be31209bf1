import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseRegistry, serializeImages } from "../../src/registry/format.js";
import { RegistryError } from "../../src/registry/errors.js";
import { parseRfc3339 } from "../../src/registry/rules.js";
import type { ImageEntry } from "../../src/registry/types.js";
import { failureMessage, fixture, FIXTURE_FILES } from "./support.js";

const SHA = "4ba827131504ad681419026094795f378bc77b8b93eb23793cfe0554f87ea70c";

/** An `[[images]]` table with valid values, `fields` replacing (or, when null, removing) some. */
function imageToml(fields: Record<string, string | null> = {}): string {
  const values: Record<string, string | null> = {
    name: '"linux"',
    version: '"0.0.1"',
    description: '"Linux guest"',
    sha256: `"${SHA}"`,
    arch: '"aarch64"',
    url: '"https://example.com/linux.tar.gz"',
    ...fields,
  };
  const lines = Object.entries(values)
    .filter(([, value]) => value !== null)
    .map(([key, value]) => `${key} = ${value}`);
  return `[[images]]\n${lines.join("\n")}\n`;
}

/** The one-line RegistryError message of parsing `text`. */
function parseError(text: string, source = "reg.toml"): Promise<string> {
  return failureMessage(() => parseRegistry(text, source), RegistryError);
}

describe("parseRegistry on the real registry files", () => {
  for (const name of FIXTURE_FILES) {
    it(`parses ${name}`, () => {
      const warnings: string[] = [];
      const text = fixture(name);
      const file = parseRegistry(text, name, { onWarning: (w) => warnings.push(w) });
      assert.deepEqual(warnings, []);
      assert.equal(file.images.length, (text.match(/^\[\[images\]\]/gm) ?? []).length);
      assert.equal(file.includes.length, (text.match(/^\[\[includes\]\]/gm) ?? []).length);
      for (const image of file.images) {
        assert.match(image.sha256, /^[0-9a-f]{64}$/);
        assert.ok(image.released_at !== undefined);
      }
    });
  }

  it("keeps the hyphenated name phytiumpi-freertos and the includes of default.toml", () => {
    const images = parseRegistry(fixture("v0.0.26.toml"), "v0.0.26.toml").images;
    assert.ok(images.some((i) => i.name === "phytiumpi-freertos" && i.version === "0.0.26"));
    const includes = parseRegistry(fixture("default.toml"), "default.toml").includes;
    assert.equal(includes.length, 5);
    assert.match(includes[0]?.url ?? "", /\/v0\.0\.20\.toml$/);
  });
});

describe("parseRegistry errors", () => {
  it("reports a TOML syntax error with line and column", async () => {
    const message = await parseError(`${imageToml()}extra = [1,\n2\nother = 3\n`);
    assert.match(message, /^reg\.toml:10:1: TOML syntax error: /);
  });

  it("reports a missing field at the entry's line, naming the image", async () => {
    const text = `${imageToml()}\n${imageToml({ name: '"foo"', sha256: null })}`;
    assert.equal(await parseError(text), 'reg.toml:9: image "foo": sha256 is missing');
  });

  it("names an unnamed entry by its index", async () => {
    assert.equal(
      await parseError(imageToml({ name: null })),
      "reg.toml:1: images[0]: name is missing",
    );
  });

  it("reports a bad sha256 with the URL, line, image and field", async () => {
    const source = "https://x/v0.0.26.toml";
    const text = `# comment\n\n${imageToml({ name: '"foo"', sha256: '"abc"' })}`;
    assert.equal(
      await parseError(text, source),
      'https://x/v0.0.26.toml:7: image "foo": sha256 must be 64 hex digits',
    );
  });

  it("reports a value of the wrong type", async () => {
    assert.equal(
      await parseError(imageToml({ version: "1" })),
      'reg.toml:3: image "linux": version must be a string, not a number',
    );
  });

  it("refuses released_at that is not RFC 3339 (string or TOML value)", async () => {
    for (const bad of [
      '"yesterday"',
      '"2026-02-30T00:00:00Z"',
      '"2026-04-10T02:35:51"',
      "2026-04-10",
    ]) {
      assert.match(
        await parseError(imageToml({ released_at: bad })),
        /^reg\.toml:8: image "linux": released_at .* is not an RFC 3339 date-time/,
        bad,
      );
    }
    assert.match(
      await parseError(imageToml({ released_at: "12" })),
      /released_at must be a string/,
    );
  });

  it("refuses names and versions that are unsafe as file names", async () => {
    for (const bad of ["a/b", "..", ".", ".hidden", "-x", "", "a b", "a\\b", "x".repeat(101)]) {
      const message = await parseError(imageToml({ name: JSON.stringify(bad) }));
      assert.match(message, /^reg\.toml:2: images\[0\]: name /, bad);
    }
    assert.match(
      await parseError(imageToml({ version: '"../1"' })),
      /^reg\.toml:3: image "linux": version "\.\.\/1" may only contain/,
    );
  });

  it("refuses image URLs with other schemes, keeps relative ones", async () => {
    assert.match(
      await parseError(imageToml({ url: '"ftp://x/y.tar.gz"' })),
      /^reg\.toml:7: image "linux": url "ftp:\/\/x\/y\.tar\.gz" has an unsupported scheme "ftp:"/,
    );
    assert.match(await parseError(imageToml({ url: '""' })), /url is empty/);
    // A relative URL is kept as written: loading resolves it against the file (a mirror's).
    assert.equal(
      parseRegistry(imageToml({ url: '"1.0/y.tar.gz"' }), "r").images[0]?.url,
      "1.0/y.tar.gz",
    );
    for (const good of ["http://x/a", "https://x/a", "file:///tmp/a.tar", "oci://ghcr.io/a/b:1"]) {
      assert.equal(
        parseRegistry(imageToml({ url: JSON.stringify(good) }), "r").images[0]?.url,
        good,
      );
    }
  });

  it("refuses includes with an unsupported scheme, and tables of the wrong shape", async () => {
    assert.match(
      await parseError('[[includes]]\nurl = "oci://x/y"\n'),
      /^reg\.toml:2: includes\[0\]: url "oci:\/\/x\/y" has an unsupported scheme/,
    );
    assert.equal(await parseError("[[includes]]\n"), "reg.toml:1: includes[0]: url is missing");
    assert.match(
      await parseError("images = 3\n"),
      /^reg\.toml:1: images must be an array of tables/,
    );
    assert.match(await parseError("[images]\nname = 1\n"), /images must be an array of tables/);
    assert.equal(
      await parseError("images = [1]\n"),
      "reg.toml: images[0]: must be a table, not a number",
    );
  });
});

describe("parseRegistry values", () => {
  it("normalizes an upper-case sha256 to lower case", () => {
    const file = parseRegistry(imageToml({ sha256: `"${SHA.toUpperCase()}"` }), "r");
    assert.equal(file.images[0]?.sha256, SHA);
  });

  it("accepts released_at quoted (kept as written) or as a TOML date-time (ISO string)", () => {
    const quoted = parseRegistry(imageToml({ released_at: '"2026-04-10 02:35:51+02:00"' }), "r");
    assert.equal(quoted.images[0]?.released_at, "2026-04-10 02:35:51+02:00");
    const bare = parseRegistry(imageToml({ released_at: "2026-04-10T02:35:51Z" }), "r");
    assert.equal(bare.images[0]?.released_at, "2026-04-10T02:35:51.000Z");
    const offset = parseRegistry(imageToml({ released_at: "2026-04-10T02:35:51+02:00" }), "r");
    assert.equal(offset.images[0]?.released_at, "2026-04-10T02:35:51.000+02:00");
  });

  it("accepts unknown keys with a warning naming file, line, image and key", () => {
    const warnings: string[] = [];
    const text = `future = 1\n${imageToml({ size: "12" })}[[includes]]\nurl = "a.toml"\nmirror = "x"\n`;
    const file = parseRegistry(text, "reg.toml", { onWarning: (w) => warnings.push(w) });
    assert.equal(file.images.length, 1);
    assert.deepEqual(Object.keys(file.images[0] ?? {}).sort(), [
      "arch",
      "description",
      "name",
      "sha256",
      "url",
      "version",
    ]);
    assert.deepEqual(warnings, [
      'reg.toml:1: unknown key "future" ignored',
      'reg.toml:9: image "linux": unknown key "size" ignored',
      'reg.toml:12: includes[0]: unknown key "mirror" ignored',
    ]);
  });
});

describe("serializeImages", () => {
  const a: ImageEntry = {
    name: "b",
    version: "0.0.10",
    description: 'say "hi"\n\ttab \x7f \u00e9 \u{1F600}',
    sha256: SHA,
    arch: "aarch64",
    url: "https://x/b.tar.gz",
    released_at: "2026-04-10T02:35:51Z",
  };
  const b: ImageEntry = { ...a, name: "a", version: "2", description: "plain" };
  delete b.released_at;
  const c: ImageEntry = { ...a, version: "0.0.9" };

  it("writes [[images]] sorted by (name, version), keys in the Rust tool's order", () => {
    const text = serializeImages([a, b, c]);
    assert.equal(
      text.split("\n\n")[0],
      [
        "[[images]]",
        'name = "a"',
        'version = "2"',
        'description = "plain"',
        `sha256 = "${SHA}"`,
        'arch = "aarch64"',
        'url = "https://x/b.tar.gz"',
      ].join("\n"),
    );
    const keys = [...text.split("\n\n")[1]!.matchAll(/^(\w+) =/gm)].map((m) => m[1]);
    assert.deepEqual(keys, "name version released_at description sha256 arch url".split(" "));
    assert.deepEqual(
      parseRegistry(text, "images.toml").images.map((i) => i.version),
      ["2", "0.0.10", "0.0.9"],
    );
  });

  it("reads back identically, with the fast reader (trusted) and without", () => {
    const text = serializeImages([a, b, c]);
    const expected = [b, a, c];
    assert.deepEqual(parseRegistry(text, "images.toml").images, expected);
    assert.deepEqual(parseRegistry(text, "images.toml", { trusted: true }).images, expected);
  });

  it("writes an empty list as images = [] and replaces lone surrogates", () => {
    assert.deepEqual(parseRegistry(serializeImages([]), "r"), { includes: [], images: [] });
    const odd = { ...b, description: "x\ud800y" };
    assert.equal(parseRegistry(serializeImages([odd]), "r").images[0]?.description, "x\ufffdy");
  });

  it("trusted parsing still validates, and falls back to TOML for other shapes", () => {
    const unsafe = serializeImages([{ ...b, name: "ok" }]).replace('"ok"', '"../x"');
    assert.throws(
      () => parseRegistry(unsafe, "images.toml", { trusted: true }),
      /images\.toml:2: images\[0\]: name "\.\.\/x" may only contain/,
    );
    const commented = `# written by hand\n${serializeImages([b])}`;
    assert.deepEqual(parseRegistry(commented, "r", { trusted: true }).images, [b]);
  });
});

describe("parseRfc3339", () => {
  it("gives the instant of valid date-times, honouring offsets, fractions and leap days", () => {
    assert.equal(parseRfc3339("2026-04-10T02:35:51Z"), Date.UTC(2026, 3, 10, 2, 35, 51));
    assert.equal(
      parseRfc3339("2026-04-10t04:35:51.25+02:00"),
      Date.UTC(2026, 3, 10, 2, 35, 51, 250),
    );
    assert.equal(parseRfc3339("2026-04-10 00:05:51-02:30"), Date.UTC(2026, 3, 10, 2, 35, 51));
    assert.equal(parseRfc3339("2024-02-29T00:00:00Z"), Date.UTC(2024, 1, 29));
    assert.equal(parseRfc3339("0050-01-01T00:00:00Z"), new Date("0050-01-01T00:00:00Z").getTime());
  });

  it("refuses dates alone, missing offsets and out-of-range fields", () => {
    for (const bad of [
      "2026-04-10",
      "2026-04-10T02:35:51",
      "2023-02-29T00:00:00Z",
      "2026-13-01T00:00:00Z",
      "2026-04-31T00:00:00Z",
      "2026-04-10T24:00:00Z",
      "2026-04-10T02:35:51+24:00",
      "26-04-10T02:35:51Z",
      "2026-0a-10T02:35:51Z",
      "2026-04-10T02:35:5Z",
      "2026-04-10T02:35:51.Z",
      "2026-04-10T02:35:51ZZ",
      "2026-04-10T02:35:51+02:00x",
      "2026-04-10T02:35:51+0200",
      "2026-04-10T02:35:51+02",
      "2026/04/10T02:35:51Z",
      "2026-04-10X02:35:51Z",
      "2026-04-10T02-35-51Z",
      "２026-04-10T02:35:51Z",
      "2026-04-10T02:35:51\u0000",
      "",
    ]) {
      assert.equal(parseRfc3339(bad), undefined, JSON.stringify(bad));
    }
  });

  it("agrees with Date.parse on the forms both read, whatever the fields", () => {
    const pad = (n: number, width: number) => String(n).padStart(width, "0");
    let seed = 7;
    const random = (n: number) => (seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) % n;
    for (let i = 0; i < 2000; i++) {
      const date = `${pad(1000 + random(9000), 4)}-${pad(1 + random(12), 2)}-${pad(1 + random(28), 2)}`;
      const time = `${pad(random(24), 2)}:${pad(random(60), 2)}:${pad(random(60), 2)}`;
      const fraction = ["", `.${pad(random(1000), 3)}`, `.${random(10)}`][random(3)];
      const zone = ["Z", `+${pad(random(24), 2)}:${pad(random(60), 2)}`, "-05:30"][random(3)];
      const text = `${date}T${time}${fraction}${zone}`;
      assert.equal(parseRfc3339(text), Date.parse(text), text);
    }
  });
});
