/**
 * Talking to one repository of an OCI distribution registry, authenticated as the ecosystem does
 * it: a request answered 401 is tried again once with what its `WWW-Authenticate` challenge asks
 * for, a Bearer token from the realm (anonymous, with the Docker login's user and password, or
 * for its identity token), or Basic credentials. The login is read (and a credential helper run)
 * only when a challenge asks for one. Tokens are cached per registry, repository and access until
 * they expire.
 * The `Authorization` header only ever goes to the registry's own origin (and credentials to the
 * token realm): never to the hosts blob requests are redirected to.
 */
import {
  httpRequest,
  statusReason,
  toTransferError,
  TransferError,
  type HttpRequestOptions,
  type HttpResponse,
} from "../http.js";
import { isRetryableStatus, requestWithRetry, type RetryOptions } from "../retry.js";
import {
  dockerConfigPath,
  loginCredentials,
  loginHint,
  loginSource,
  type Credentials,
  type LoginSource,
} from "./credentials.js";
import { registryBaseUrl, type OciReference } from "./reference.js";

/** What a client may do in its repository. */
export type OciAccess = "pull" | "pull,push";

/** Options of {@link OciClient}. */
export interface OciClientOptions extends RetryOptions {
  /** Hosts (`host[:port]`, or `host` for every port) reached over plain HTTP. */
  insecureRegistries?: readonly string[];
  /** Cancels every request. */
  signal?: AbortSignal;
  /** No byte for this long: abandon a request (default `DEFAULT_STALL_TIMEOUT_MS`). */
  stallTimeoutMs?: number;
  /** Environment for `DOCKER_CONFIG` and credential helpers (default `process.env`). */
  env?: Record<string, string | undefined>;
  /** How long a credential helper may take (default `CREDENTIAL_HELPER_TIMEOUT_MS`). */
  credentialHelperTimeoutMs?: number;
}

/** Options of {@link OciClient.request}. */
export interface OciRequestOptions extends HttpRequestOptions {
  /** Retry connection failures and 5xx (default true); false for requests that must not repeat. */
  retry?: boolean;
}

/** A parsed `WWW-Authenticate` challenge. */
export interface Challenge {
  /** Lower-case scheme: `bearer`, `basic`. */
  scheme: string;
  /** Parameters with lower-case names (`realm`, `service`, `scope`). */
  params: Record<string, string>;
}

/** The longest body read from a registry's JSON answers (manifests, tokens, errors). */
export const MAX_JSON_BYTES = 4 * 1024 * 1024;
const DEFAULT_TOKEN_SECONDS = 60;
/** A token is not used in its last seconds: a long request could outlive it. */
const TOKEN_MARGIN_MS = 10_000;

/** `Authorization` values by registry base URL, repository and access. */
const authCache = new Map<string, { authorization: string; expires: number }>();

/**
 * Parses the first challenge of a `WWW-Authenticate` value, e.g.
 * `Bearer realm="https://ghcr.io/token",service="ghcr.io",scope="repository:a/b:pull"`.
 */
export function parseChallenge(value: string | undefined): Challenge | undefined {
  const match = /^\s*([A-Za-z][\w-]*)\s*(.*)$/s.exec(value ?? "");
  if (!match) return undefined;
  const params: Record<string, string> = {};
  const pairs = /([\w-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))\s*,?\s*/gy;
  for (let pair = pairs.exec(match[2] ?? ""); pair; pair = pairs.exec(match[2] ?? "")) {
    params[pair[1]!.toLowerCase()] = pair[2]?.replace(/\\(.)/g, "$1") ?? pair[3] ?? "";
  }
  return { scheme: match[1]!.toLowerCase(), params };
}

/** The whole body of `response` as text, or a {@link TransferError} past `maxBytes`. */
export async function readText(
  response: HttpResponse,
  maxBytes = MAX_JSON_BYTES,
  signal?: AbortSignal,
): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of response.body) {
      size += (chunk as Buffer).length;
      if (size > maxBytes) {
        response.body.destroy();
        throw new TransferError(response.url, `answer larger than ${maxBytes} bytes`, {
          retryable: false,
        });
      }
      chunks.push(chunk as Buffer);
    }
  } catch (err) {
    throw toTransferError(err, response.url, signal);
  }
  return Buffer.concat(chunks).toString("utf8");
}

/**
 * The error for a registry answer that is not what was hoped for: the status, with the
 * registry's own error code and message when its body says (`{"errors":[{code,message}]}`), and
 * `hint` (what to do about a login) for a 401 or 403.
 */
async function registryFailure(
  response: HttpResponse,
  what: string,
  hint: string,
): Promise<TransferError> {
  let detail = "";
  try {
    const body = JSON.parse(await readText(response, 64 * 1024)) as {
      errors?: { code?: unknown; message?: unknown }[];
    };
    const first = body.errors?.[0];
    if (first !== undefined) detail = `: ${String(first.code)} ${String(first.message ?? "")}`;
  } catch {
    response.body.destroy(); // no readable error body: the status says enough
  }
  const reason = `${what}: ${statusReason(response.status)}${detail.trimEnd()}`;
  return new TransferError(response.url, reason, {
    retryable: isRetryableStatus(response.status),
    status: response.status,
    hint: response.status === 401 || response.status === 403 ? hint : undefined,
  });
}

/** An authenticated client for one repository of one registry. */
export class OciClient {
  /** The registry's base URL, `https://host[:port]` (or `http://` for insecure hosts). */
  readonly base: string;
  /** The repository this client works in. */
  readonly ref: OciReference;
  readonly #access: OciAccess;
  readonly #options: OciClientOptions;
  #login: Promise<LoginSource> | undefined;
  #credentials: Promise<Credentials | undefined> | undefined;

  constructor(ref: OciReference, access: OciAccess, options: OciClientOptions = {}) {
    this.ref = ref;
    this.base = registryBaseUrl(ref.host, options.insecureRegistries ?? []);
    this.#access = access;
    this.#options = options;
  }

  /** Where the client's notices go (retries, an upload started over), if anywhere. */
  get logger(): OciClientOptions["logger"] {
    return this.#options.logger;
  }

  /** `<base>/v2/<repository>/<path>`. */
  url(path: string): string {
    return `${this.base}/v2/${this.ref.repository}/${path}`;
  }

  get #cacheKey(): string {
    return `${this.base} ${this.ref.repository} ${this.#access}`;
  }

  /** The `Authorization` header of the current token, if there is one that has not expired. */
  authHeaders(): Record<string, string> {
    const cached = authCache.get(this.#cacheKey);
    if (cached === undefined || cached.expires <= Date.now()) return {};
    return { authorization: cached.authorization };
  }

  /**
   * Answers a 401's challenge: fetches a new token (or takes the Basic credentials) and resolves
   * with the headers to try again with. Throws a {@link TransferError} naming the registry when the
   * challenge cannot be met (no credentials for Basic, a token service that refuses).
   */
  async authorize(challenge: string | undefined): Promise<Record<string, string>> {
    const parsed = parseChallenge(challenge);
    const credentials = await this.#loadCredentials();
    let authorization: string;
    let seconds = Infinity;
    if (parsed?.scheme === "bearer" && parsed.params.realm !== undefined) {
      const token = await this.#fetchToken(parsed.params, credentials);
      authorization = `Bearer ${token.token}`;
      seconds = token.seconds;
    } else if (parsed?.scheme === "basic" && credentials?.kind === "password") {
      authorization = `Basic ${basic(credentials)}`;
    } else if (parsed?.scheme === "basic" && credentials !== undefined) {
      const reason = `asks for a user and password; ${credentials.source} has an identity token`;
      throw await this.#authFailure(reason, credentials);
    } else {
      throw await this.#authFailure(`requires a login to ${this.#access} ${this.ref.repository}`);
    }
    authCache.set(this.#cacheKey, {
      authorization,
      expires: Date.now() + seconds * 1000 - TOKEN_MARGIN_MS,
    });
    return { authorization };
  }

  /**
   * Sends a request to `url` (a registry URL, or an upload location), with the cached
   * authorization when `url` is on the registry's origin; a 401 is answered once through
   * {@link OciClient.authorize}. Redirects are followed without the authorization.
   */
  async request(url: string, options: OciRequestOptions = {}): Promise<HttpResponse> {
    const send = (auth: Record<string, string>) => {
      const ownOrigin = new URL(url).origin === new URL(this.base).origin;
      const request = {
        ...options,
        signal: this.#options.signal,
        stallTimeoutMs: this.#options.stallTimeoutMs,
        headers: { ...options.headers, ...(ownOrigin ? auth : {}) },
      };
      return options.retry === false
        ? httpRequest(url, request)
        : requestWithRetry(url, { ...request, ...this.#retryOptions() });
    };
    const first = await send(this.authHeaders());
    if (first.status !== 401) return first;
    first.body.destroy();
    const second = await send(await this.authorize(first.headers["www-authenticate"]));
    if (second.status !== 401) return second;
    second.body.destroy();
    const credentials = await this.#loadCredentials();
    const who =
      credentials === undefined ? "anonymous access" : `the login from ${credentials.source}`;
    const what = `${this.#access} ${this.ref.repository}`;
    throw await this.#authFailure(`refused ${who} to ${what} (HTTP 401 Unauthorized)`, credentials);
  }

  /**
   * The error for a registry answer that is not what was hoped for (see `registryFailure`): a 401
   * or 403 comes with what to do about the login.
   */
  async failure(response: HttpResponse, what: string): Promise<TransferError> {
    const refused = response.status === 401 || response.status === 403;
    const credentials = refused ? await this.#loadCredentials().catch(() => undefined) : undefined;
    return registryFailure(response, what, await this.#loginHint(credentials));
  }

  /** A failure to authenticate with the registry (a mirror's moves on to the next candidate). */
  async #authFailure(reason: string, refused?: Credentials): Promise<TransferError> {
    const hint = await this.#loginHint(refused);
    return new TransferError(this.ref.host, reason, { retryable: false, status: 401, hint });
  }

  /** What to do about a login the registry wants, or refused (`refused`). */
  async #loginHint(refused: Credentials | undefined): Promise<string> {
    const source = await this.#loadLoginSource().catch(() => ({
      file: dockerConfigPath(this.#options.env),
    }));
    return loginHint(source, this.ref.host, refused);
  }

  #retryOptions(): RetryOptions {
    const { retries, retryBaseMs, logger, failFastWhenUnreachable } = this.#options;
    return { retries, retryBaseMs, logger, failFastWhenUnreachable };
  }

  #loadLoginSource(): Promise<LoginSource> {
    this.#login ??= loginSource(this.ref.host, this.#options.env);
    return this.#login;
  }

  #loadCredentials(): Promise<Credentials | undefined> {
    this.#credentials ??= this.#loadLoginSource().then((source) =>
      loginCredentials(source, this.ref.host, {
        env: this.#options.env ?? process.env,
        signal: this.#options.signal,
        timeoutMs: this.#options.credentialHelperTimeoutMs,
      }),
    );
    return this.#credentials;
  }

  async #fetchToken(
    params: Record<string, string>,
    credentials: Credentials | undefined,
  ): Promise<{ token: string; seconds: number }> {
    const realm = params.realm ?? "";
    const url = URL.canParse(realm) ? new URL(realm) : undefined;
    const plain = url?.protocol === "http:" && new URL(this.base).protocol === "https:";
    if (url === undefined || (url.protocol !== "https:" && url.protocol !== "http:") || plain) {
      throw this.#authFailure(`refusing the token service "${realm}" (not https)`);
    }
    const scope = `repository:${this.ref.repository}:${this.#access}`;
    const request = tokenRequest(url, { ...params, scope }, credentials);
    const response = await requestWithRetry(url.href, {
      ...request,
      signal: this.#options.signal,
      stallTimeoutMs: this.#options.stallTimeoutMs,
      ...this.#retryOptions(),
    });
    if (response.status !== 200) {
      const who = credentials === undefined ? "anonymous" : `the login from ${credentials.source}`;
      const hint = await this.#loginHint(credentials);
      throw await registryFailure(response, `token for ${this.ref.repository} (${who})`, hint);
    }
    const text = await readText(response, MAX_JSON_BYTES, this.#options.signal);
    let body: { token?: unknown; access_token?: unknown; expires_in?: unknown };
    try {
      body = JSON.parse(text) as typeof body;
    } catch {
      body = {};
    }
    const token = typeof body.token === "string" ? body.token : body.access_token;
    if (typeof token !== "string" || token === "") {
      throw new TransferError(response.url, "the token service answered without a token", {
        retryable: false,
      });
    }
    const seconds = typeof body.expires_in === "number" ? body.expires_in : DEFAULT_TOKEN_SECONDS;
    return { token, seconds };
  }
}

/**
 * The token request to the realm `url` for `params` (`service`, `scope`): a GET, anonymous or with
 * the user and password as Basic auth; for an identity token, the OAuth2 refresh-token grant (a
 * POST of a form), as docker sends it.
 */
function tokenRequest(
  url: URL,
  params: Record<string, string>,
  credentials: Credentials | undefined,
): HttpRequestOptions {
  const fields = { service: params.service, scope: params.scope };
  if (credentials?.kind === "identity-token") {
    const form = new URLSearchParams({
      grant_type: "refresh_token",
      refresh_token: credentials.token,
      client_id: "axvisor-image",
    });
    for (const [key, value] of Object.entries(fields)) if (value) form.set(key, value);
    return {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: form.toString(),
    };
  }
  for (const [key, value] of Object.entries(fields)) if (value) url.searchParams.set(key, value);
  return credentials === undefined
    ? {}
    : { headers: { authorization: `Basic ${basic(credentials)}` } };
}

function basic({ username, password }: { username: string; password: string }): string {
  return Buffer.from(`${username}:${password}`).toString("base64");
}
