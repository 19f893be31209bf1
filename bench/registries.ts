/**
 * Registry files for the benchmark, written below `<root>/registry/` (the server's root) and
 * pointing at the server's port, so they are rewritten on every run:
 * - `bench.toml`: the generated images (bundles, root file systems);
 * - `big.toml`: 20,000 entries (5,000 names x 4 versions), for `ls`;
 * - `sync/default.toml`: six versioned includes, each including `common.toml`, like the real
 *   axvisor-guest registry.
 */
import { createHash } from "node:crypto";
import { mkdir, writeFile } from "node:fs/promises";
import { dirname, join, relative, sep } from "node:path";
import { stringify } from "smol-toml";
import type { ImageEntry } from "../src/registry/types.js";
import type { GeneratedArchive } from "./image.js";

/** Name of the big image (`.tar.gz` bundle) in the benchmark registry. */
export const BIG_IMAGE = "bench_guest";
/** Name of the tiny image in the benchmark registry. */
export const TINY_IMAGE = "bench_tiny";
/** Entries of the `ls` registry. */
export const LS_ENTRIES = 20_000;
/** Versioned includes of the `sync` registry. */
export const SYNC_INCLUDES = 6;

/** Name, below the server's root, of the link to the archive cache (cache.ts). */
export const CACHE_LINK = "cache";

/** Server paths of the registry files (absolute paths on the server). */
export interface RegistryPaths {
  bench: string;
  big: string;
  sync: string;
}

/** Server path of an archive in the cache directory `cacheDir` (served through {@link CACHE_LINK}). */
export function archiveServerPath(cacheDir: string, archive: string): string {
  return `/${CACHE_LINK}/` + relative(cacheDir, archive).split(sep).join("/");
}

function fakeEntry(name: string, version: string, day: number, url: string): ImageEntry {
  return {
    name,
    version,
    description: `Benchmark guest ${name} ${version}`,
    sha256: createHash("sha256").update(`${name}:${version}`).digest("hex"),
    arch: ["aarch64", "x86_64", "riscv64"][day % 3]!,
    url,
    released_at: new Date(Date.UTC(2025, 0, 1 + day)).toISOString().replace(".000", ""),
  };
}

async function writeToml(root: string, path: string, doc: Record<string, unknown>): Promise<void> {
  const file = join(root, path);
  await mkdir(dirname(file), { recursive: true });
  await writeFile(file, stringify(doc) + "\n");
}

/**
 * Writes every registry file below `root`; `url(path)` makes a server URL. `images` maps each
 * image name of `bench.toml` to its archive in `cacheDir`.
 */
export async function writeRegistries(
  root: string,
  cacheDir: string,
  images: Record<string, GeneratedArchive>,
  url: (path: string) => string,
): Promise<RegistryPaths> {
  const paths: RegistryPaths = {
    bench: "/registry/bench.toml",
    big: "/registry/big.toml",
    sync: "/registry/sync/default.toml",
  };
  const real = (name: string, archive: GeneratedArchive): ImageEntry => ({
    ...fakeEntry(name, "1.0.0", 0, url(archiveServerPath(cacheDir, archive.path))),
    sha256: archive.sha256,
  });
  await writeToml(root, paths.bench, {
    images: Object.entries(images).map(([name, archive]) => real(name, archive)),
  });

  const versions = 4;
  const many = Array.from({ length: LS_ENTRIES }, (_, i) => {
    const name = `guest_${String(Math.floor(i / versions)).padStart(5, "0")}`;
    return fakeEntry(name, `0.${i % versions}.0`, i % 365, url(`/images/${name}.tar.gz`));
  });
  await writeToml(root, paths.big, { images: many });

  const syncDir = dirname(paths.sync);
  const include = (n: number) => `v0.0.${20 + n}.toml`;
  await writeToml(root, paths.sync, {
    includes: Array.from({ length: SYNC_INCLUDES }, (_, n) => ({ url: include(n) })),
  });
  for (let n = 0; n < SYNC_INCLUDES; n++) {
    const version = `0.0.${20 + n}`;
    await writeToml(root, `${syncDir}/${include(n)}`, {
      includes: [{ url: "common.toml" }],
      images: Array.from({ length: 20 }, (_, i) =>
        fakeEntry(`board_${i}`, version, n * 30 + i, url(`/images/board_${i}-${version}.tar.gz`)),
      ),
    });
  }
  await writeToml(root, `${syncDir}/common.toml`, {
    images: Array.from({ length: 10 }, (_, i) =>
      fakeEntry(`common_${i}`, "1.0.0", i, url(`/images/common_${i}.tar.gz`)),
    ),
  });
  return paths;
}
