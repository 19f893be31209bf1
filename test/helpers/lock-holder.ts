/**
 * A process that takes a store lock, for the lock tests (run with `node --import tsx`):
 *
 * - `lock-holder.ts STORE NAME hold`: takes the lock, prints `held`, keeps it until killed;
 * - `lock-holder.ts STORE NAME cycles N STALE_MS`: N times, takes the lock and, inside, checks
 *   that no live process is inside too (an `inside` file holding the pid of the process in the
 *   critical section), bumps `counter` (written to a temporary name, then renamed), prints `cycle`.
 */
import { existsSync } from "node:fs";
import { readFile, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { withLock } from "../../src/store/lock.js";

const [store, name, mode, count, staleMs] = process.argv.slice(2) as [
  string,
  string,
  string,
  string?,
  string?,
];

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

if (mode === "hold") {
  await withLock(store, name, async () => {
    process.stdout.write("held\n");
    await new Promise(() => {});
  });
} else {
  const inside = join(store, "inside");
  const counter = join(store, "counter");
  for (let i = 0; i < Number(count); i++) {
    await withLock(
      store,
      name,
      async (lock) => {
        if (existsSync(inside)) {
          const other = Number(await readFile(inside, "utf8").catch(() => "0"));
          // A holder killed inside leaves its file: only a live one is a second holder.
          if (other > 0 && other !== process.pid && alive(other)) {
            process.stdout.write(`overlap with ${other}\n`);
          }
        }
        await writeFile(inside, String(process.pid));
        const n = Number(await readFile(counter, "utf8").catch(() => "0"));
        await sleep(2);
        await writeFile(`${counter}.${process.pid}`, String(n + 1));
        lock.assertHeld();
        await rename(`${counter}.${process.pid}`, counter);
        await rm(inside, { force: true });
      },
      { staleMs: Number(staleMs ?? 10_000) },
    );
    process.stdout.write("cycle\n");
  }
}
