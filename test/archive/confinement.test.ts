/**
 * Property: whatever an archive holds (random names built from `..`, absolute parts, links,
 * look-alike names, directories and files in any order), extraction either succeeds or fails with
 * a one-line AxError, and nothing outside the destination is created, changed or followed.
 */
import assert from "node:assert/strict";
import fs from "node:fs/promises";
import path from "node:path";
import { describe, it } from "node:test";
import fc from "fast-check";
import { AxError } from "../../src/errors.js";
import { member, tar, type RawMember } from "../helpers/tar.js";
import { extractBuffer, sandbox, snapshot } from "./sandbox.js";

/** Path pieces chosen to collide, climb, escape or alias one another. */
const SEGMENTS = ["a", "b", "A", "..", ".", "", "link", "LINK", "ﬀ", "ff", "d", "x.txt"];

const segment = fc.constantFrom(...SEGMENTS);
const relativePath = fc
  .array(segment, { minLength: 1, maxLength: 4 })
  .map((parts) => parts.join("/"));
/** Names as archives write them: relative, absolute, or with a trailing slash. */
const memberName = fc.oneof(
  relativePath,
  relativePath.map((p) => `/${p}`),
  relativePath.map((p) => `${p}/`),
);
/** Link targets, including ones pointing outside through the sandbox's `outside/victim.txt`. */
const linkTarget = (outside: string) =>
  fc.oneof(relativePath, fc.constant(outside), fc.constant(path.join(outside, "victim.txt")));

function randomMember(outside: string): fc.Arbitrary<RawMember> {
  return fc.oneof(
    fc.record({ name: memberName, data: fc.constantFrom("payload", "") }),
    fc.record({ name: memberName, type: fc.constant("5") }),
    fc.record({ name: memberName, type: fc.constant("2"), linkname: linkTarget(outside) }),
    fc.record({ name: memberName, type: fc.constant("1"), linkname: linkTarget(outside) }),
  );
}

describe("path confinement (property-based)", () => {
  it("no archive writes outside its destination", async () => {
    const sb = await sandbox();
    try {
      const outsideBefore = await snapshot(sb.outside, "");
      let runs = 0;
      await fc.assert(
        fc.asyncProperty(
          fc.array(randomMember(sb.outside), { minLength: 1, maxLength: 8 }),
          async (members) => {
            runs++;
            const dest = path.join(sb.root, `dest-${runs}`);
            try {
              await extractBuffer(tar(...members.map(member)), dest);
            } catch (err) {
              assert.ok(err instanceof AxError, `not an AxError: ${String(err)}`);
              assert.doesNotMatch(err.message, /\n/, "one-line message");
            }
            assert.deepEqual(await snapshot(sb.outside, ""), outsideBefore, "outside unchanged");
            const top = (await fs.readdir(sb.root)).filter((n) => !n.startsWith("dest-"));
            assert.deepEqual(top.sort(), ["outside"], "nothing created beside the destination");
            await fs.rm(dest, { recursive: true, force: true });
          },
        ),
        { numRuns: 300, seed: 20261121 },
      );
    } finally {
      await sb.cleanup();
    }
  });
});
