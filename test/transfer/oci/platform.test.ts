/** The child of an image index a registry entry's `arch` picks. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { TransferError } from "../../../src/transfer/http.js";
import { pickPlatformManifest, type IndexEntry } from "../../../src/transfer/oci/platform.js";

let made = 0;
function child(platform?: string): IndexEntry {
  const [os, architecture, variant] = (platform ?? "").split("/");
  return {
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    digest: `sha256:${String(++made).padStart(64, "0")}`,
    size: 1,
    ...(platform === undefined
      ? {}
      : { platform: { os: os!, architecture: architecture!, ...(variant ? { variant } : {}) } }),
  };
}

const pick = (children: IndexEntry[], arch?: string) =>
  pickPlatformManifest(children, arch, "oci://h/r:1");

describe("an image index's child for an entry's arch", () => {
  it("names architectures as uname -m does, and finds them by Go's names", () => {
    const [arm64, amd64, riscv, loong] = [
      child("linux/arm64"),
      child("linux/amd64"),
      child("linux/riscv64"),
      child("linux/loong64"),
    ];
    const index = [arm64!, amd64!, riscv!, loong!];
    assert.equal(pick(index, "aarch64"), arm64);
    assert.equal(pick(index, "arm64"), arm64);
    assert.equal(pick(index, "x86_64"), amd64);
    assert.equal(pick(index, "riscv64"), riscv);
    assert.equal(pick(index, "loongarch64"), loong);
    const spelledOut = child("linux/loongarch64");
    assert.equal(pick([arm64!, spelledOut], "loongarch64"), spelledOut);
  });

  it("prefers the default variant, else takes the first match; a variant asked for must match", () => {
    const [v9, v8] = [child("linux/arm64/v9"), child("linux/arm64/v8")];
    assert.equal(pick([v9!, v8!], "aarch64"), v8, "arm64/v8 is what aarch64 means");
    const [v3, v1] = [child("linux/amd64/v3"), child("linux/amd64")];
    assert.equal(pick([v3!, v1!], "x86_64"), v1);
    assert.equal(pick([v3!, child("linux/arm64")], "x86_64"), v3, "another variant still fits");
    const [arm6, arm7] = [child("linux/arm/v6"), child("linux/arm")];
    assert.equal(pick([arm6!, arm7!], "armv7l"), arm7, "arm without a variant is v7");
    assert.throws(() => pick([arm6!, child("linux/arm64")], "armv7l"), /without a manifest/);
  });

  it("uses the only child, whatever its platform", () => {
    const only = child("linux/amd64");
    assert.equal(pick([only], "aarch64"), only);
    const bare = child();
    assert.equal(pick([bare], "aarch64"), bare);
  });

  it("lists the platforms it has when none fits", () => {
    const children = ["arm64/v8", "amd64", "s390x", "ppc64le", "386", "mips64le", "arm/v6"]
      .map((p) => child(`linux/${p}`))
      .concat([child(), child("linux/arm/v7"), child("linux/arm/v5")]);
    assert.throws(
      () => pick(children, "riscv64"),
      (err) => {
        assert.ok(err instanceof TransferError);
        assert.equal(
          err.reason,
          "is an image index without a manifest for riscv64: it has linux/arm64/v8, linux/amd64, " +
            `linux/s390x, linux/ppc64le, linux/386, linux/mips64le, linux/arm/v6, ${children[7]!.digest} ` +
            "(no platform), 2 more",
        );
        assert.match(err.hint ?? "", /aarch64 = arm64/);
        return true;
      },
    );
    assert.throws(
      () => pick(children.slice(0, 2), "loongarch64"),
      /without a manifest for loongarch64 \(loong64\): it has linux\/arm64\/v8, linux\/amd64$/,
    );
    assert.throws(() => pick([], "aarch64"), /is an empty image index/);
  });

  it("passes over the attestations docker buildx adds: one image beside them is the only child", () => {
    const image = child("linux/arm64");
    const attestation = {
      ...child("unknown/unknown"),
      annotations: {
        "vnd.docker.reference.type": "attestation-manifest",
        "vnd.docker.reference.digest": image.digest,
      },
    };
    // An entry without arch (as many registries have), and one whose arch the image does not say.
    assert.equal(pick([image, attestation]), image);
    assert.equal(pick([attestation, image], "x86_64"), image);
    const amd64 = child("linux/amd64");
    assert.equal(pick([image, attestation, amd64, attestation], "x86_64"), amd64);
    assert.throws(() => pick([image, amd64, attestation]), /without a manifest: it has/);
    assert.throws(() => pick([attestation]), /only attestations/);
  });
});
