/**
 * The rollback state: for each signed registry file the store accepted, the key and trusted
 * timestamp of the newest signature accepted (`registry/signature.ts` decides; this module keeps
 * it), and which key verified each image of the registry in the store (what `info` and
 * `ls --json` show). It lives in the store's bookkeeping, `.axvisor-image/signatures.json`:
 *
 * ```json
 * { "version": 1,
 *   "files": { "https://host/registry.toml": { "key_id": "F7073FCE3D2CAC77", "timestamp": 1767225600 } },
 *   "images": [{ "name": "x", "version": "1", "key_id": "F7073FCE3D2CAC77", "file": "https://host/registry.toml" }] }
 * ```
 *
 * `files` keyed by each file's location without credentials; `images` replaced at each sync (empty
 * when the registry in the store was not verified). Unlike caches it is not optional: losing it
 * would let an old signed registry be replayed once, so it is written atomically and fsynced, and
 * a file that cannot be read as such is an error naming it, never an empty state.
 */
import { mkdir } from "node:fs/promises";
import { dirname } from "node:path";
import { AxError } from "../errors.js";
import type { AcceptedSignature, AcceptedSignatures } from "../registry/signature.js";
import { FileProblemError, readRegularFile } from "../regular-file.js";
import { storeError } from "./access.js";
import { bookkeeping } from "./layout.js";
import { replaceFile } from "../atomic-file.js";

const STATE_VERSION = 1;

/** The largest state read: a record per verified image of the largest registries, and room. */
const MAX_STATE_BYTES = 256 * 1024 * 1024;

/** One file's record as stored (snake_case, like the rest of the store's files). */
interface StoredSignature {
  key_id: string;
  timestamp: number;
}

/** An image of the store's registry that came from a verified file, and the key that signed it. */
export interface VerifiedImage {
  name: string;
  version: string;
  /** The key that signed the file it came from (as minisign prints it: up to 16 hex digits). */
  keyId: string;
  /** That file (its location without credentials). */
  file: string;
}

/** One verified image as stored. */
interface StoredImage {
  name: string;
  version: string;
  key_id: string;
  file: string;
}

const KEY_ID = /^[0-9A-F]{1,16}$/;

function isStoredImage(value: unknown): value is StoredImage {
  const record = value as StoredImage;
  return (
    typeof value === "object" &&
    value !== null &&
    typeof record.name === "string" &&
    typeof record.version === "string" &&
    typeof record.file === "string" &&
    typeof record.key_id === "string" &&
    KEY_ID.test(record.key_id)
  );
}

function isStoredSignature(value: unknown): value is StoredSignature {
  const record = value as StoredSignature;
  return (
    typeof value === "object" &&
    value !== null &&
    typeof record.key_id === "string" &&
    KEY_ID.test(record.key_id) &&
    Number.isSafeInteger(record.timestamp) &&
    record.timestamp >= 0
  );
}

/** The whole state: accepted signatures, verified images. */
interface SignatureState {
  accepted: Map<string, AcceptedSignature>;
  images: VerifiedImage[];
}

/** The state of `text`, or undefined when it is not a state this version wrote. */
function parseState(text: string): SignatureState | undefined {
  let state: unknown;
  try {
    state = JSON.parse(text);
  } catch {
    return undefined;
  }
  const { version, files, images } = (state ?? {}) as {
    version?: unknown;
    files?: unknown;
    images?: unknown;
  };
  if (version !== STATE_VERSION || typeof files !== "object" || files === null) return undefined;
  const stored = images ?? [];
  if (!Array.isArray(stored) || !stored.every(isStoredImage)) return undefined;
  const accepted = new Map<string, AcceptedSignature>();
  for (const [file, record] of Object.entries(files)) {
    if (!isStoredSignature(record)) return undefined;
    accepted.set(file, { keyId: record.key_id, timestamp: record.timestamp });
  }
  return {
    accepted,
    images: stored.map((i) => ({
      name: i.name,
      version: i.version,
      keyId: i.key_id,
      file: i.file,
    })),
  };
}

/** The state of `store` (empty when there is none); see {@link readAcceptedSignatures}. */
async function readState(store: string): Promise<SignatureState> {
  const path = bookkeeping(store).signatures;
  let text: string;
  try {
    // A FIFO or a device in its place is an error, never a hang.
    text = (await readRegularFile(path, MAX_STATE_BYTES)).toString("utf8");
  } catch (err) {
    if (err instanceof FileProblemError && err.problem.kind === "missing") {
      return { accepted: new Map(), images: [] };
    }
    if (err instanceof FileProblemError) throw err;
    throw await storeError(store, err, "read", path);
  }
  const state = parseState(text);
  if (state === undefined) {
    throw new AxError(`${path}: corrupt rollback state (not a state this version wrote)`, {
      hint: "remove it: the next sync accepts any correctly signed registry, however old",
    });
  }
  return state;
}

/**
 * The signatures the store `store` accepted (empty when it has accepted none).
 *
 * @throws AxError naming the state file when it cannot be read or is not a state this version
 *   wrote (its hint says what removing it costs).
 */
export async function readAcceptedSignatures(store: string): Promise<AcceptedSignatures> {
  return (await readState(store)).accepted;
}

/** The key of an image in what {@link readVerifiedKeys} returns. */
export function verifiedImageKey(name: string, version: string): string {
  return `${name}\0${version}`;
}

/**
 * The key that signed each image of the store's registry that came from a verified file, by
 * {@link verifiedImageKey} (empty when the registry was not verified). For display only: a state
 * that cannot be read (a read-only or broken store) claims no image verified, and the readers
 * (`info`, `ls`) still work; the next sync reports the problem.
 */
export async function readVerifiedKeys(store: string): Promise<ReadonlyMap<string, string>> {
  const { images } = await readState(store).catch(() => ({ images: [] as VerifiedImage[] }));
  return new Map(images.map((i) => [verifiedImageKey(i.name, i.version), i.keyId]));
}

/**
 * Replaces the state of `store` with `accepted` and the verified `images` of the registry the sync
 * writes (temporary file, fsync, rename; a link in its place is replaced, not followed).
 */
export async function writeAcceptedSignatures(
  store: string,
  accepted: AcceptedSignatures,
  images: readonly VerifiedImage[] = [],
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
    const stored = images.map((i): StoredImage => ({
      name: i.name,
      version: i.version,
      key_id: i.keyId,
      file: i.file,
    }));
    const state = { version: STATE_VERSION, files, images: stored };
    await replaceFile(path, `${JSON.stringify(state, null, 1)}\n`);
  } catch (err) {
    throw await storeError(store, err, "write", path);
  }
}
