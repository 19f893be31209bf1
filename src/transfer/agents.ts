/**
 * The connection pools every request goes through: one keep-alive agent for `http:` and one for
 * `https:` (Node's own), and, only for a URL the environment sends through a proxy, a proxy agent
 * per proxy URL (`http-proxy-agent` for plain http, `https-proxy-agent`, which tunnels with
 * `CONNECT`, for https), loaded on first use so that a run without a proxy never loads them.
 *
 * Which proxy applies is decided per request by `proxy-from-env`, the rules of curl and most
 * tools: `HTTPS_PROXY` for https URLs, `HTTP_PROXY` for http URLs, `ALL_PROXY` for both, minus the
 * hosts of `NO_PROXY` (`host`, `host:port`, `.domain`, `*.domain`, `*`); either case, re-read on
 * every request. Credentials in the proxy URL are sent to the proxy as Basic auth.
 */
import http from "node:http";
import https from "node:https";
import { getProxyForUrl } from "proxy-from-env";
import { AxError } from "../errors.js";

/** Pool settings shared by every agent: reuse connections, most recently used first. */
const POOL = { keepAlive: true, scheduling: "lifo" } as const;

let direct: { http: http.Agent; https: https.Agent } | undefined;
const proxied = new Map<string, Promise<http.Agent>>();

/** The proxy agent for `proxy` and URLs of `protocol`, made on first use. */
async function proxyAgent(protocol: string, proxy: string): Promise<http.Agent> {
  let proxyUrl: URL;
  try {
    proxyUrl = new URL(proxy);
  } catch (err) {
    const names =
      protocol === "https:" ? "HTTPS_PROXY (or ALL_PROXY)" : "HTTP_PROXY (or ALL_PROXY)";
    throw new AxError(`the proxy in ${names} is not a valid URL`, { cause: err });
  }
  if (proxyUrl.protocol !== "http:" && proxyUrl.protocol !== "https:") {
    throw new AxError(
      `proxy ${proxyUrl.protocol}// URLs are not supported (use http:// or https://)`,
    );
  }
  if (protocol === "https:") {
    const { HttpsProxyAgent } = await import("https-proxy-agent");
    return new HttpsProxyAgent(proxyUrl, POOL);
  }
  const { HttpProxyAgent } = await import("http-proxy-agent");
  return new HttpProxyAgent(proxyUrl, POOL);
}

/** The agent for a request to `url` (an http(s) URL), following the proxy environment. */
export function agentFor(url: URL): http.Agent | Promise<http.Agent> {
  const proxy = getProxyForUrl(url.href);
  if (proxy === "") {
    direct ??= { http: new http.Agent(POOL), https: new https.Agent(POOL) };
    return url.protocol === "https:" ? direct.https : direct.http;
  }
  const key = `${url.protocol} ${proxy}`;
  let agent = proxied.get(key);
  if (agent === undefined) {
    agent = proxyAgent(url.protocol, proxy);
    agent.catch(() => proxied.delete(key));
    proxied.set(key, agent);
  }
  return agent;
}
