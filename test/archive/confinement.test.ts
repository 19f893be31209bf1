/**
 * Property: whatever an archive holds (random names built from `..`, absolute parts, links,
 * look-alike names, directories and files in any order), extraction either succeeds or fails with
 * a one-line AxError, and nothing outside the destination is created, changed or followed.
 */
import path from "node:path";
import { describe, it } from "node:test";
import fc from "fast-check";
import { member, tar, type RawMember } from "../helpers/tar.js";
import { withConfinementCheck } from "./sandbox.js";

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
    await withConfinementCheck(async (check, sb) => {
      await fc.assert(
        fc.asyncProperty(
          fc.array(randomMember(sb.outside), { minLength: 1, maxLength: 8 }),
          (members) => check(tar(...members.map(member))),
        ),
        { numRuns: 300, seed: 20261121 },
      );
    });
  });
});
