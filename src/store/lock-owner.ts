/**
 * Who holds a store lock, and whether that holder still runs: the owner record written beside a
 * lock, and the checks that let a waiter recover the lock of a dead process at once instead of
 * after its stale time.
 */
import { randomBytes } from "node:crypto";
import { readFileSync, readlinkSync } from "node:fs";
import { hostname } from "node:os";
import { hasCode } from "../errors.js";

/** Written in a lock directory once it is held (`<name>.lock/owner`). */
export interface LockOwner {
  pid: number;
  /** The host name. */
  host: string;
  /**
   * On Linux, the boot and the pid namespace the pid belongs to (`boot_id` and
   * `/proc/self/ns/pid`): a pid means something only there (not in another container of the same
   * host name, nor after a reboot). Absent elsewhere.
   */
  machine?: string;
  /** On Linux, the process's start time (clock ticks since boot): a reused pid has another one. */
  start?: string;
  /** Random: tells this holding of the lock from any later one (inode numbers are reused). */
  token: string;
}

/**
 * What an owner record says about its lock: `dead` (its process is gone: the lock is stale at
 * once), `alive` (its process, the same one, still runs: the lock is held, however long it has not
 * been refreshed), or `unknown` (no record, another machine, or a pid
 * that runs but cannot be told from a reused one: only the refresh time can tell).
 */
export type OwnerState = "dead" | "alive" | "unknown";

function readOptional(read: () => string): string | undefined {
  try {
    return read().trim();
  } catch {
    return undefined; // not Linux, or /proc not mounted
  }
}

/** The start time of process `pid` (field 22 of `/proc/<pid>/stat`), undefined when unknown. */
function startTime(pid: number): string | undefined {
  const stat = readOptional(() => readFileSync(`/proc/${pid}/stat`, "utf8"));
  // The command name (field 2) is in parentheses and may hold spaces: count after the last ")".
  return stat?.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
}

let thisMachine: string | undefined | null = null;

/** This process's boot and pid namespace (Linux), undefined elsewhere. */
function machine(): string | undefined {
  if (thisMachine === null) {
    const boot = readOptional(() => readFileSync("/proc/sys/kernel/random/boot_id", "utf8"));
    const namespace = readOptional(() => readlinkSync("/proc/self/ns/pid"));
    thisMachine =
      boot !== undefined && namespace !== undefined ? `${boot} ${namespace}` : undefined;
  }
  return thisMachine;
}

/** A new owner record of this process, with a fresh token. */
export function ownerRecord(): LockOwner {
  const owner: LockOwner = {
    pid: process.pid,
    host: hostname(),
    token: randomBytes(8).toString("hex"),
  };
  const here = machine();
  const start = startTime(process.pid);
  if (here !== undefined) owner.machine = here;
  if (start !== undefined) owner.start = start;
  return owner;
}

/** Parses an owner file's text; undefined when it is not an owner record. */
export function parseOwner(text: string): LockOwner | undefined {
  try {
    const o = JSON.parse(text) as Partial<LockOwner>;
    if (typeof o.pid !== "number" || typeof o.host !== "string" || typeof o.token !== "string") {
      return undefined;
    }
    return o as LockOwner;
  } catch {
    return undefined;
  }
}

/** True while process `pid` exists (of any user). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return !hasCode(err, "ESRCH");
  }
}

/** What `owner` says about its lock (see {@link OwnerState}). */
export function ownerState(owner: LockOwner | undefined): OwnerState {
  if (owner === undefined || owner.host !== hostname()) return "unknown";
  if (owner.machine !== machine()) return "unknown";
  if (!Number.isInteger(owner.pid) || owner.pid <= 0 || !isAlive(owner.pid)) return "dead";
  if (owner.start === undefined) return "unknown";
  const now = startTime(owner.pid);
  if (now === undefined) return "unknown";
  return now === owner.start ? "alive" : "dead";
}
