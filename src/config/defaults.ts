import { tmpdir } from "node:os";
import { join } from "node:path";

/** The registry the Rust tool reads by default. */
export const DEFAULT_REGISTRY =
  "https://raw.githubusercontent.com/arceos-hypervisor/axvisor-guest/refs/heads/main/registry/default.toml";

/** Used by `sync` when the registry itself cannot be fetched. */
export const DEFAULT_FALLBACK_REGISTRY =
  "https://raw.githubusercontent.com/arceos-hypervisor/axvisor-guest/refs/heads/main/registry/v0.0.25.toml";

/** Seven days, as the Rust tool. */
export const DEFAULT_AUTO_SYNC_THRESHOLD = 7 * 24 * 60 * 60;

/** Name of the configuration file searched upward from the working directory. */
export const CONFIG_FILE_NAME = ".image.toml";

/** `<os tmpdir>/.axvisor-images`, the Rust tool's store. */
export function defaultLocalStorage(): string {
  return join(tmpdir(), ".axvisor-images");
}
