/**
 * Signed registry files: where a file's signature is, when a signature is accepted, and the
 * rollback rule. Pure functions over bytes: the sync fetches a file and its signature, asks
 * {@link verifyRegistryFile}, then {@link checkRollback} against what the store accepted before,
 * and records {@link acceptSignatures} once the registry is in the store.
 *
 * A signature is accepted when a key pinned for the registry made it (minisign, see
 * `../minisign.ts`), it covers the file's exact bytes, its trusted comment carries a timestamp
 * (`timestamp:<unix>`, what `minisign -S` and `registry sign` write), that timestamp is not in the
 * future, and the file name it was made for (`file:<name>`), when it names one, is the file's.
 */
import { basename } from "node:path";
import { parseSignature, verifySignature, SIGNATURE_SUFFIX, type PublicKey } from "../minisign.js";
import { RegistryError } from "./errors.js";
import { isRemote, withoutCredentials } from "./location.js";

/** How far in the future (seconds) a signature's timestamp may be: one day of clock skew. */
export const MAX_CLOCK_SKEW_SECONDS = 86_400;

/** The longest part of a trusted comment quoted in a message. */
const QUOTED_COMMENT_CHARS = 100;

/** The outcome of checking one registry file's signature. */
export type SignatureVerdict =
  /** Signed by `keyId`, a pinned key, at `timestamp` (unix seconds, from the trusted comment). */
  | { status: "verified"; file: string; keyId: string; timestamp: number }
  /** No key is pinned for the registry and signatures are not required: taken as it is. */
  | { status: "unverified"; file: string }
  /** Refused: `message` is one line naming the file (and its signature) and why. */
  | { status: "refused"; file: string; message: string; hint?: string };

/** What {@link verifyRegistryFile} checks. */
export interface RegistryFileToVerify {
  /** The file's location (canonical URL or absolute path), as the loader names it. */
  file: string;
  /** The file's exact bytes. */
  content: Uint8Array;
  /** The bytes of its signature ({@link signatureLocation}), or undefined when there is none. */
  signature: Uint8Array | undefined;
  /** The keys pinned for the registry the file belongs to (its root's, for an include). */
  keys: readonly PublicKey[];
  /** Refuse a file that no pinned key signed even when no key is pinned (`require_signatures`). */
  required?: boolean;
  /** The time now, unix seconds (default: the clock). */
  now?: number;
}

/** What a trusted comment says: its `timestamp:` and `file:` fields. */
export interface TrustedComment {
  timestamp?: number;
  file?: string;
}

/**
 * Where the signature of the registry file at `location` is: beside it, with `.minisig` appended
 * to its name (`https://host/registry.toml.minisig`, the query kept), as `minisign -S` writes it.
 */
export function signatureLocation(location: string): string {
  if (!isRemote(location)) return location + SIGNATURE_SUFFIX;
  const url = new URL(location);
  url.pathname += SIGNATURE_SUFFIX;
  url.hash = "";
  return url.href;
}

/** The file name of `location`, as a signature's `file:` names it: its last path segment. */
export function fileNameOf(location: string): string {
  if (!isRemote(location)) return basename(location);
  const segment = new URL(location).pathname.split("/").at(-1) ?? "";
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

/**
 * The trusted comment `registry sign` writes, minisign's default: `timestamp:<unix>`,
 * `file:<name>` and `hashed`, separated by tabs.
 */
export function trustedCommentFor(fileName: string, timestamp: number): string {
  return `timestamp:${timestamp}\tfile:${fileName}\thashed`;
}

/**
 * Reads the fields of a trusted comment (tab-separated, as minisign writes them); other fields
 * are ignored.
 *
 * @returns the fields, or a problem: a field given twice, or a timestamp that is not a whole
 *   number of seconds.
 */
export function parseTrustedComment(comment: string): TrustedComment | { problem: string } {
  const fields: TrustedComment = {};
  for (const field of comment.split("\t")) {
    if (field.startsWith("timestamp:")) {
      const value = field.slice("timestamp:".length);
      if (fields.timestamp !== undefined) return { problem: "two timestamps" };
      if (!/^\d{1,15}$/.test(value)) return { problem: `timestamp "${value}" is not unix seconds` };
      fields.timestamp = Number(value);
    } else if (field.startsWith("file:")) {
      if (fields.file !== undefined) return { problem: "two file names" };
      fields.file = field.slice("file:".length);
    }
  }
  return fields;
}

/** An RFC 3339 UTC rendering of unix seconds, for messages. */
function isoTime(seconds: number): string {
  const date = new Date(seconds * 1000);
  return Number.isNaN(date.getTime()) ? `${seconds}` : date.toISOString().replace(".000Z", "Z");
}

function quoteComment(comment: string): string {
  const short =
    comment.length > QUOTED_COMMENT_CHARS
      ? `${comment.slice(0, QUOTED_COMMENT_CHARS)}...`
      : comment;
  return JSON.stringify(short);
}

/**
 * Checks the signature of one registry file against the keys pinned for its registry.
 *
 * - no key pinned, signatures not required: `unverified` (a signature, if any, is not read);
 * - otherwise the file must carry a signature by a pinned key, over its exact bytes, whose
 *   trusted comment has a timestamp at most {@link MAX_CLOCK_SKEW_SECONDS} ahead of `now` and,
 *   if it names a file, this file's name: `verified`, else `refused` with one line saying why.
 *
 * Never throws: whatever the bytes, the answer is a verdict.
 */
export function verifyRegistryFile(input: RegistryFileToVerify): SignatureVerdict {
  const { file, keys } = input;
  const where = signatureLocation(file);
  const refused = (message: string, hint?: string): SignatureVerdict => ({
    status: "refused",
    file,
    message,
    hint,
  });
  if (keys.length === 0) {
    if (!input.required) return { status: "unverified", file };
    return refused(
      `${file}: signatures are required, but no key is pinned for this registry`,
      'pin the publisher\'s public key in .image.toml ([[trust]] keys = ["RW..."])',
    );
  }
  if (input.signature === undefined) {
    return refused(
      `${file}: not signed (no ${where}), but a key is pinned for this registry`,
      "its publisher signs every registry file (axvisor-image registry sign, or minisign -S); " +
        "a mirror or proxy may have dropped the signature",
    );
  }
  let signature;
  try {
    signature = parseSignature(input.signature, where);
  } catch (err) {
    return refused((err as Error).message);
  }
  // Whoever makes a key chooses its id: two pinned keys may share one, and each is tried.
  const candidates = keys.filter((k) => k.keyNum.equals(signature.keyNum));
  if (candidates.length === 0) {
    const pinned = keys.map((k) => k.keyId).join(", ");
    return refused(
      `${file}: signed by key ${signature.keyId}, which is not pinned for this registry (pinned: ${pinned})`,
      "if the publisher rotated its key, pin the new one (see README, Trusting a registry)",
    );
  }
  const problems = candidates.map((k) => verifySignature(input.content, signature, k));
  const index = problems.indexOf(undefined);
  const key = candidates[Math.max(index, 0)]!;
  const problem = index >= 0 ? undefined : problems[0];
  if (problem === "content") {
    return refused(
      `${file}: the content does not match its signature (${where}): changed after it was signed`,
    );
  }
  if (problem === "trusted-comment") {
    return refused(`${where}: the trusted comment was changed after it was signed`);
  }
  const comment = parseTrustedComment(signature.trustedComment);
  if ("problem" in comment) {
    return refused(
      `${where}: trusted comment ${quoteComment(signature.trustedComment)}: ${comment.problem}`,
    );
  }
  if (comment.timestamp === undefined) {
    return refused(
      `${where}: no timestamp in the trusted comment ${quoteComment(signature.trustedComment)}`,
      "sign with axvisor-image registry sign, or minisign -S without -t: both write one",
    );
  }
  const now = input.now ?? Math.floor(Date.now() / 1000);
  if (comment.timestamp > now + MAX_CLOCK_SKEW_SECONDS) {
    return refused(
      `${file}: signed at ${isoTime(comment.timestamp)}, more than a day in the future`,
      "check this machine's clock (or the publisher's)",
    );
  }
  const name = fileNameOf(file);
  if (comment.file !== undefined && comment.file !== name) {
    return refused(
      `${file}: its signature was made for a file named ${JSON.stringify(comment.file)}, ` +
        `not ${JSON.stringify(name)}`,
      "one signed file of a registry cannot stand for another; sign each file under the name it is served as",
    );
  }
  return { status: "verified", file, keyId: key.keyId, timestamp: comment.timestamp };
}

/**
 * A registry file refused for its signature (unsigned, signed by a key not pinned, tampered with,
 * replayed): a sign of tampering on the way, so the sync keeps the store's registry and does not
 * try the fallback registry.
 */
export class SignatureError extends RegistryError {
  constructor(message: string, options: { hint?: string } = {}) {
    super(message, options);
    this.name = "SignatureError";
  }
}

/** A {@link SignatureError} for a refused verdict: its message and hint. */
export function refusalError(
  verdict: Extract<SignatureVerdict, { status: "refused" }>,
): SignatureError {
  return new SignatureError(verdict.message, { hint: verdict.hint });
}

/** What the loader checks the signature of every registry file of one sync against. */
export interface SignaturePolicy {
  /** The keys pinned for the registry (its root's, for every include). */
  keys: readonly PublicKey[];
  /** Refuse a file no pinned key signed even when no key is pinned (`require_signatures`). */
  required: boolean;
  /** What the store accepted before, for the rollback rule. */
  accepted: AcceptedSignatures;
  /** The time now, unix seconds (default: the clock). */
  now?: number;
}

/**
 * The verdict on one registry file under `policy`: {@link verifyRegistryFile}, then
 * {@link checkRollback}.
 */
export function judgeRegistryFile(
  file: string,
  content: Uint8Array,
  signature: Uint8Array | undefined,
  policy: SignaturePolicy,
): SignatureVerdict {
  const { keys, required, now } = policy;
  const verdict = verifyRegistryFile({ file, content, signature, keys, required, now });
  return checkRollback(verdict, policy.accepted);
}

/** True when `policy` asks for signatures to be read at all. */
export function checksSignatures(policy: SignaturePolicy | undefined): boolean {
  return policy !== undefined && (policy.keys.length > 0 || policy.required);
}

/** The newest signature the store accepted for one registry file. */
export interface AcceptedSignature {
  /** The key that made it (as minisign prints it: up to 16 hex digits). */
  keyId: string;
  /** Its trusted timestamp, unix seconds. */
  timestamp: number;
}

/**
 * The newest accepted signature of each registry file, by {@link acceptedSignatureKey} of its
 * location. The store keeps it (`store/signatures.ts`).
 */
export type AcceptedSignatures = ReadonlyMap<string, AcceptedSignature>;

/**
 * The key of a registry file in {@link AcceptedSignatures}: its location without credentials
 * (`https://user:token@host/x` is `https://host/x`), so that no secret is written to the store
 * and a token change keeps the record.
 */
export function acceptedSignatureKey(file: string): string {
  return isRemote(file) ? new URL(withoutCredentials(file)).href : file;
}

/**
 * The rollback rule: a verified file signed before the signature the store already accepted for
 * the same location is refused (an equal timestamp is the same signing, or one in the same
 * second, and passes). Other verdicts are returned as they are.
 */
export function checkRollback(
  verdict: SignatureVerdict,
  accepted: AcceptedSignatures,
): SignatureVerdict {
  if (verdict.status !== "verified") return verdict;
  const previous = accepted.get(acceptedSignatureKey(verdict.file));
  if (previous === undefined || verdict.timestamp >= previous.timestamp) return verdict;
  return {
    status: "refused",
    file: verdict.file,
    message:
      `${verdict.file}: signed at ${isoTime(verdict.timestamp)}, before the copy already accepted ` +
      `(signed at ${isoTime(previous.timestamp)} by key ${previous.keyId}): refused as a rollback`,
    hint: "a mirror, proxy or cache may be serving an old copy; the registry in the store is kept",
  };
}

/**
 * `accepted` with the verified verdicts recorded (each location keeps its newest timestamp);
 * call it once the registry they belong to is in the store.
 */
export function acceptSignatures(
  accepted: AcceptedSignatures,
  verdicts: readonly SignatureVerdict[],
): AcceptedSignatures {
  const next = new Map(accepted);
  for (const verdict of verdicts) {
    if (verdict.status !== "verified") continue;
    const key = acceptedSignatureKey(verdict.file);
    const previous = next.get(key);
    if (previous === undefined || verdict.timestamp >= previous.timestamp) {
      next.set(key, { keyId: verdict.keyId, timestamp: verdict.timestamp });
    }
  }
  return next;
}
