/**
 * The rootfs names of the TGOS registry, as axbuild knows them: `rootfs-<arch>-<distro>.img`, the
 * default rootfs of each architecture (`pull --arch ARCH`), and the aliases `alpine`, `busybox`
 * and `debian` that stand for that distribution's rootfs of the chosen architecture.
 */
import { UsageError } from "../errors.js";
import type { ImageSpec } from "./types.js";

/** The architectures `--arch` accepts, spelt as axbuild spells them (and as registries do). */
export const ROOTFS_ARCHES = ["aarch64", "x86_64", "riscv64", "loongarch64"] as const;

/** The rootfs aliases, as axbuild's `--rootfs` reads them. */
export const ROOTFS_ALIASES = ["alpine", "busybox", "debian"] as const;

/** The distribution of an architecture's default rootfs. */
const DEFAULT_DISTRO = "alpine";

/** True when `name` is a rootfs alias. */
export function isRootfsAlias(name: string): boolean {
  return (ROOTFS_ALIASES as readonly string[]).includes(name);
}

/**
 * Checks `arch` for `--arch`.
 *
 * @throws UsageError listing the architectures when it is none of them.
 */
export function checkArch(arch: string): void {
  if (!(ROOTFS_ARCHES as readonly string[]).includes(arch)) {
    throw new UsageError(`no managed rootfs image for architecture "${arch}"`, {
      hint: `--arch takes one of ${ROOTFS_ARCHES.join(", ")}`,
    });
  }
}

/** `rootfs-<arch>-<distro>.img`. */
function rootfsName(arch: string, distro: string): string {
  return `rootfs-${arch}-${distro}.img`;
}

/** The default rootfs of `arch` (`rootfs-<arch>-alpine.img`), what `pull --arch ARCH` pulls. */
export function defaultRootfs(arch: string): ImageSpec {
  checkArch(arch);
  return { name: rootfsName(arch, DEFAULT_DISTRO) };
}

/**
 * `spec` with `--arch arch`: an alias becomes that distribution's rootfs of `arch`, its version
 * kept (`debian:0.0.15` -> `rootfs-riscv64-debian.img:0.0.15`).
 *
 * @throws UsageError for a full image name: `--arch` takes an alias or nothing (as axbuild, which
 *   takes a name or `--arch`, not both).
 */
export function expandAlias(spec: ImageSpec, arch: string): ImageSpec {
  checkArch(arch);
  if (!isRootfsAlias(spec.name)) {
    throw new UsageError(
      `--arch takes a rootfs alias or no image, not the image name ${spec.name}`,
      {
        hint: `aliases: ${ROOTFS_ALIASES.join(", ")}; without --arch, a name is pulled as it is`,
      },
    );
  }
  const name = rootfsName(arch, spec.name);
  return spec.version === undefined ? { name } : { name, version: spec.version };
}
