/**
 * nginx on 127.0.0.1 serving a directory: plain HTTP (Range, keep-alive) and, with a
 * {@link TestCa}, HTTPS. It runs in the foreground of its own temporary prefix (configuration,
 * pid, logs and temporary files all inside it), so it touches nothing else. The
 * access log records each request with its connection number and the request's rank on that
 * connection, so tests can see keep-alive at work.
 */
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { startDaemon, startOnFreePorts, type Daemon } from "./daemon.js";
import type { TestCa } from "./test-ca.js";

/** One line of the access log. */
export interface NginxRequest {
  /** `GET /path HTTP/1.1`. */
  request: string;
  status: number;
  /** nginx's connection serial number: equal numbers, same TCP connection. */
  connection: number;
  /** How many requests that connection had carried, this one included. */
  connectionRequests: number;
  /** The Range header, or `-`. */
  range: string;
  /** The user of the Basic credentials nginx accepted, or `-`. */
  user: string;
  /** The host name the request was sent to (Host header). */
  host: string;
}

/** A running nginx. */
export interface Nginx extends Daemon {
  /** `http://127.0.0.1:<port>/<path>`. */
  url(path: string): string;
  /** `https://127.0.0.1:<port>/<path>` (only with a CA). */
  tlsUrl(path: string): string;
  /** The access log so far. */
  requests(): Promise<NginxRequest[]>;
}

/** Options of {@link startNginx}. */
export interface NginxOptions {
  /** Adds an HTTPS listener with the CA's server certificate. */
  ca?: TestCa;
  /** Extra directives (`location` blocks) for both listeners, given their ports. */
  locations?: (ports: { http: number; https: number }) => string;
}

/** Starts nginx serving `root`, its files in `prefix` (a fresh directory). */
export async function startNginx(
  root: string,
  prefix: string,
  options: NginxOptions = {},
): Promise<Nginx> {
  await mkdir(join(prefix, "logs"), { recursive: true });
  return startOnFreePorts(2, async ([port, tlsPort]) => {
    const plain = `http://127.0.0.1:${port}`;
    const common = `
      root ${root};
      keepalive_timeout 30s;
      keepalive_requests 1000;
      ${options.locations?.({ http: port!, https: tlsPort! }) ?? ""}`;
    const tls = options.ca
      ? `server {
           listen 127.0.0.1:${tlsPort} ssl;
           ssl_certificate ${options.ca.serverCert};
           ssl_certificate_key ${options.ca.serverKey};
           ${common}
         }`
      : "";
    const config = `
      daemon off;
      master_process off;
      worker_processes 1;
      pid ${prefix}/nginx.pid;
      error_log ${prefix}/logs/error.log warn;
      events { worker_connections 256; }
      http {
        default_type application/octet-stream;
        log_format tests '$connection $connection_requests $status "$request" "$http_range" "$remote_user" "$host"';
        access_log ${prefix}/logs/access.log tests;
        client_body_temp_path ${prefix}/body;
        proxy_temp_path ${prefix}/proxy;
        fastcgi_temp_path ${prefix}/fastcgi;
        uwsgi_temp_path ${prefix}/uwsgi;
        scgi_temp_path ${prefix}/scgi;
        server { listen 127.0.0.1:${port}; ${common} }
        ${tls}
      }`;
    const file = join(prefix, "nginx.conf");
    await writeFile(file, config);
    const daemon = await startDaemon(
      "nginx",
      ["-p", prefix, "-c", file, "-e", join(prefix, "logs", "error.log")],
      options.ca ? [port!, tlsPort!] : [port!],
    );
    return {
      ...daemon,
      url: (path) => `${plain}/${path.replace(/^\//, "")}`,
      tlsUrl: (path) => `https://127.0.0.1:${tlsPort}/${path.replace(/^\//, "")}`,
      async requests() {
        const log = await readFile(join(prefix, "logs", "access.log"), "utf8").catch(() => "");
        return log
          .split("\n")
          .filter((line) => line !== "")
          .map((line) => {
            const [, connection, rank, status, request, range, user, host] =
              /^(\d+) (\d+) (\d+) "([^"]*)" "([^"]*)" "([^"]*)" "([^"]*)"$/.exec(line) ?? [];
            return {
              request: request ?? line,
              status: Number(status),
              connection: Number(connection),
              connectionRequests: Number(rank),
              range: range ?? "-",
              user: user ?? "-",
              host: host ?? "",
            };
          });
      },
    };
  });
}
