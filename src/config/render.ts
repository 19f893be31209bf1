import {
  DEFAULT_AUTO_SYNC_THRESHOLD,
  DEFAULT_FALLBACK_REGISTRY,
  DEFAULT_REGISTRY,
  defaultLocalStorage,
} from "./defaults.js";

/** The text `defconfig` writes: every key with its default value and a comment. */
export function renderDefaultConfig(): string {
  return `# axvisor-image configuration (also read by cargo axvisor image for the first four keys)

# Where images and the merged registry are kept.
local_storage = ${JSON.stringify(defaultLocalStorage())}

# Registry file (URL or path) synced into the store; [[includes]] are followed.
registry = ${JSON.stringify(DEFAULT_REGISTRY)}

# Sync automatically when the local registry is missing or older than the threshold.
auto_sync = true

# Seconds after which the local registry is re-synced (0 = never re-sync a present registry).
auto_sync_threshold = ${DEFAULT_AUTO_SYNC_THRESHOLD}

# Used by sync when the registry above cannot be fetched.
fallback_registry = ${JSON.stringify(DEFAULT_FALLBACK_REGISTRY)}

# Mirrors: image URLs starting with prefix are tried at replace first, then the original.
# [[mirrors]]
# prefix = "https://github.com/"
# replace = "https://mirror.example.org/github/"

# OCI registries that may be reached over plain HTTP (loopback hosts always may).
# insecure_registries = ["harbor.lan:5000"]
`;
}
