/**
 * The rollback state: for each signed registry file the store accepted, the key and trusted
 * timestamp of the newest signature accepted (`registry/signature.ts` decides; this module keeps
 * it). It lives in the store's bookkeeping, `.axvisor-image/signatures.json`:
 *
 * ```json
 * { "version": 1,
 *   "files": { "https://host/registry.toml": { "key_id": "F7073FCE3D2CAC77", "timestamp": 1767225600 } } }
 * ```
 *
 * keyed by each file's location without credentials. Unlike caches it is not optional: losing it
 * would let an old signed registry be replayed once, so it is written atomically and fsynced, and
 * a file that cannot be read as such is an error naming it, never an empty state.
 */
import { mkdir, readFile } from "node:fs/promises";
import { dirname } from "node:path";
import writeFileAtomic from "write-file-atomic";
import { AxError, hasCode } from "../errors.js";
import type { AcceptedSignature, AcceptedSignatures } from "../registry/signature.js";
import { storeError } from "./access.js";
import { bookkeeping } from "./layout.js";

const STATE_VERSION = 1;

/** One file's record as stored (snake_case, like the rest of the store's files). */
interface StoredSignature {
  key_id: string;
  timestamp: number;
}

function isStoredSignature(value: unknown): value is StoredSignature {
  const record = value as StoredSignature;
  return (
    typeof value === "object" &&
    value !== null &&
    typeof record.key_id === "string" &&
    /^[0-9A-F]{16}$/.test(record.key_id) &&
    Number.isSafeInteger(record.timestamp) &&
    record.timestamp >= 0
  );
}

/** The accepted signatures of `text`, or undefined when it is not a state this version wrote. */
function parseState(text: string): Map<string, AcceptedSignature> | undefined {
  let state: unknown;
  try {
    state = JSON.parse(text);
  } catch {
    return undefined;
  }
  const { version, files } = (state ?? {}) as { version?: unknown; files?: unknown };
  if (version !== STATE_VERSION || typeof files !== "object" || files === null) return undefined;
  const accepted = new Map<string, AcceptedSignature>();
  for (const [file, record] of Object.entries(files)) {
    if (!isStoredSignature(record)) return undefined;
    accepted.set(file, { keyId: record.key_id, timestamp: record.timestamp });
  }
  return accepted;
}

/**
 * The signatures the store `store` accepted (empty when it has accepted none).
 *
 * @throws AxError naming the state file when it cannot be read or is not a state this version
 *   wrote (its hint says what removing it costs).
 */
export async function readAcceptedSignatures(store: string): Promise<AcceptedSignatures> {
  const path = bookkeeping(store).signatures;
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    if (hasCode(err, "ENOENT")) return new Map();
    throw await storeError(store, err, "read", path);
  }
  const accepted = parseState(text);
  if (accepted === undefined) {
    throw new AxError(`${path}: corrupt rollback state (not a state this version wrote)`, {
      hint: "remove it: the next sync accepts any correctly signed registry, however old",
    });
  }
  return accepted;
}

/** Replaces the rollback state of `store` with `accepted` (temporary file, fsync, rename). */
export async function writeAcceptedSignatures(
  store: string,
  accepted: AcceptedSignatures,
): Promise<void> {
  const path = bookkeeping(store).signatures;
  // fromEntries defines own properties: a key named `__proto__` stays a key.
  const files = Object.fromEntries(
    [...accepted].map(([file, s]): [string, StoredSignature] => [
      file,
      { key_id: s.keyId, timestamp: s.timestamp },
    ]),
  );
  try {
    await mkdir(dirname(path), { recursive: true });
    await writeFileAtomic(path, `${JSON.stringify({ version: STATE_VERSION, files }, null, 1)}\n`);
  } catch (err) {
    throw await storeError(store, err, "write", path);
  }
}
