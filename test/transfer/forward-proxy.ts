/**
 * A tiny forward proxy on 127.0.0.1 for tests: CONNECT tunnels and absolute-form requests, each
 * recorded with the Proxy-Authorization header it carried.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import net from "node:net";

/** One request the proxy handled. */
export interface ProxiedRequest {
  /** `CONNECT host:port`, or `GET http://...`. */
  line: string;
  /** The Proxy-Authorization header, if any. */
  proxyAuthorization: string | undefined;
}

/** A running forward proxy. */
export interface ForwardProxy {
  /** `http://127.0.0.1:<port>`. */
  readonly url: string;
  /** Requests seen, in order. */
  readonly seen: ProxiedRequest[];
  /** Stops the proxy and drops its connections. */
  close(): Promise<void>;
}

/** Starts a forward proxy that only ever connects to 127.0.0.1. */
export async function startForwardProxy(): Promise<ForwardProxy> {
  const seen: ProxiedRequest[] = [];
  const tunnels = new Set<net.Socket>();
  const server = http.createServer((req, res) => {
    seen.push({
      line: `${req.method} ${req.url}`,
      proxyAuthorization: req.headers["proxy-authorization"],
    });
    const target = new URL(req.url ?? "");
    const headers = { ...req.headers };
    delete headers["proxy-authorization"];
    const upstream = http.request(
      { host: "127.0.0.1", port: target.port, path: target.pathname, method: req.method, headers },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.on("error", () => res.destroy());
    req.pipe(upstream);
  });
  server.on("connect", (req: http.IncomingMessage, client: net.Socket, head: Buffer) => {
    seen.push({
      line: `CONNECT ${req.url}`,
      proxyAuthorization: req.headers["proxy-authorization"],
    });
    const port = Number(new URL(`http://${req.url}`).port);
    const upstream = net.connect(port, "127.0.0.1", () => {
      client.write("HTTP/1.1 200 Connection Established\r\n\r\n");
      upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    for (const socket of [client, upstream]) {
      tunnels.add(socket);
      socket.on("error", () => {
        client.destroy();
        upstream.destroy();
      });
      socket.on("close", () => tunnels.delete(socket));
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of tunnels) socket.destroy();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
