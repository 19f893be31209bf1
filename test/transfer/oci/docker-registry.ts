/**
 * A real OCI registry for tests: Debian's `docker-registry` (distribution 2.8) started on
 * 127.0.0.1 with an ephemeral port, filesystem storage in a temporary directory and a config
 * written here; optionally with htpasswd (bcrypt, made by `htpasswd` from apache2-utils) basic
 * auth. Its access log is kept, so tests can see which requests it served.
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { tempDir } from "../../helpers/images.js";

const BINARY = "/usr/bin/docker-registry";

/** Why registry tests cannot run here, or undefined when they can. */
export function missingRegistry(options: { htpasswd?: boolean } = {}): string | undefined {
  if (!existsSync(BINARY)) {
    return `${BINARY} is absent (apt-get install docker-registry)`;
  }
  if (options.htpasswd && !hasHtpasswd())
    return "htpasswd is absent (apt-get install apache2-utils)";
  return undefined;
}

function hasHtpasswd(): boolean {
  try {
    execFileSync("htpasswd", ["-h"], { stdio: "ignore" });
    return true;
  } catch (err) {
    return (err as { code?: string }).code !== "ENOENT"; // it ran, and printed its usage
  }
}

/** A running registry. */
export interface DockerRegistry {
  /** `127.0.0.1:<port>`. */
  host: string;
  /** Everything the registry logged so far (access log lines included). */
  log(): string;
  /** Stops the registry and removes its storage. */
  close(): Promise<void>;
}

/** Starts a registry; with `login`, only that user (basic auth) may pull and push. */
export async function startDockerRegistry(
  options: { login?: { username: string; password: string } } = {},
): Promise<DockerRegistry> {
  const dir = await tempDir("axi-oci-registry-");
  const auth = options.login
    ? ["auth:", "  htpasswd:", "    realm: basic-realm", `    path: ${join(dir.path, "htpasswd")}`]
    : [];
  if (options.login) {
    const line = execFileSync("htpasswd", ["-Bbn", options.login.username, options.login.password]);
    await writeFile(join(dir.path, "htpasswd"), line);
  }
  const config = [
    "version: 0.1",
    "log:",
    "  level: info",
    "storage:",
    "  filesystem:",
    `    rootdirectory: ${join(dir.path, "data")}`,
    "http:",
    "  addr: 127.0.0.1:0",
    "  secret: axvisor-image-tests",
    ...auth,
    "",
  ].join("\n");
  await writeFile(join(dir.path, "config.yml"), config);

  const child = spawn(BINARY, ["serve", join(dir.path, "config.yml")], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  const port = await new Promise<number>((resolve, reject) => {
    const onData = (data: Buffer) => {
      output += data.toString();
      const match = /listening on 127\.0\.0\.1:(\d+)/.exec(output);
      if (match) resolve(Number(match[1]));
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    child.on("error", reject);
    child.on("exit", (code) => reject(new Error(`docker-registry exited (${code}): ${output}`)));
  });
  return {
    host: `127.0.0.1:${port}`,
    log: () => output,
    async close() {
      await stop(child);
      await dir.cleanup();
    },
  };
}

function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once("exit", () => resolve());
    child.kill("SIGTERM");
  });
}
