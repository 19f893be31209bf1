/**
 * A test world: a fault-injecting HTTP server on 127.0.0.1 serving archives and a registry, a
 * temporary store, and the CLI / library pointed at them.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { stat } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { Config } from "../../src/config/config.js";
import { startFaultServer, type FaultServer } from "./fault-server.js";
import {
  CLI,
  cliEnv,
  makeTar,
  makeTarGz,
  registryToml,
  runCli,
  sha256,
  tempDir,
  type CliRun,
  type Member,
  type TestEntry,
} from "./images.js";

/** An image published in a {@link World}. */
export interface Published {
  entry: TestEntry;
  archive: Buffer;
  /** Path of the archive on the server. */
  path: string;
}

/** See the module comment. */
export interface World {
  server: FaultServer;
  /** Temporary root: the store is `<root>/store`. */
  root: string;
  store: string;
  /** URL of the registry file on the server. */
  registryUrl: string;
  /** Publishes an archive and (re)writes the registry with every published image. */
  publish(
    name: string,
    version: string,
    members: Member[],
    options?: { released_at?: string; ext?: string; archive?: Buffer; sha256?: string },
  ): Promise<Published>;
  /** A library configuration for this world. */
  config(overrides?: Partial<Config>): Config;
  /** Runs the CLI with `-S store -R registry` in front of `args`. */
  cli(
    args: string[],
    options?: { env?: Record<string, string>; cwd?: string; timeoutMs?: number },
  ): Promise<CliRun>;
  /** Starts the CLI (`-S store -R registry` first) in the background, to be killed. */
  startCli(args: string[]): { child: ChildProcess; closed: Promise<unknown> };
  /** `startCli(["pull", image])`. */
  startPull(image: string): { child: ChildProcess; closed: Promise<unknown> };
  /** Waits (bounded) until the `.part` of `archiveName` holds at least `bytes` bytes. */
  waitForPart(archiveName: string, bytes: number): Promise<void>;
  close(): Promise<void>;
}

/** Starts a world; call `close()` when done. */
export async function startWorld(): Promise<World> {
  const server = await startFaultServer();
  const dir = await tempDir();
  const store = join(dir.path, "store");
  const entries: TestEntry[] = [];
  const writeRegistry = () => server.setFile("/registry.toml", registryToml(entries));
  writeRegistry();
  const registryUrl = server.url("/registry.toml");
  const startCli = (args: string[]) => {
    const child = spawn(process.execPath, [CLI, "-S", store, "-R", registryUrl, ...args], {
      env: cliEnv(),
      stdio: "ignore",
    });
    return { child, closed: new Promise((resolve) => child.on("close", (code) => resolve(code))) };
  };
  return {
    server,
    root: dir.path,
    store,
    registryUrl,
    async publish(name, version, members, options = {}) {
      const ext = options.ext ?? ".tar.gz";
      const archive =
        options.archive ?? (ext === ".tar" ? await makeTar(members) : await makeTarGz(members));
      const path = `/files/${name}-${version}${ext}`;
      server.setFile(path, archive);
      const entry: TestEntry = {
        name,
        version,
        url: server.url(path),
        sha256: options.sha256 ?? sha256(archive),
        released_at: options.released_at,
      };
      const at = entries.findIndex((e) => e.name === name && e.version === version);
      if (at >= 0) entries[at] = entry;
      else entries.push(entry);
      writeRegistry();
      return { entry, archive, path };
    },
    config(overrides = {}) {
      return {
        localStorage: store,
        registry: registryUrl,
        fallbackRegistry: server.url("/fallback.toml"),
        autoSync: true,
        autoSyncThreshold: 3600,
        mirrors: [],
        insecureRegistries: [],
        ...overrides,
      };
    },
    startCli,
    startPull: (image) => startCli(["pull", image]),
    async waitForPart(archiveName, bytes) {
      const part = join(store, `${archiveName}.part`);
      for (let i = 0; i < 150; i++) {
        const size = await stat(part).then(
          (st) => st.size,
          () => -1,
        );
        if (size >= 0 && size >= bytes) return;
        await sleep(30);
      }
    },
    cli(args, options = {}) {
      return runCli(["-S", store, "-R", registryUrl, ...args], {
        cwd: options.cwd ?? dir.path,
        env: cliEnv(options.env),
        timeoutMs: options.timeoutMs,
      });
    },
    async close() {
      await server.close();
      await dir.cleanup();
    },
  };
}
