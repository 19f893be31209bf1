/**
 * Text that reaches a person: untrusted strings (registry fields, archive member names, server
 * answers, URLs) made safe to print. Shared by the layers that build messages (archive) and by the
 * CLI, which passes everything it prints through {@link printable} and {@link redactCredentials}.
 */

/**
 * Characters that must never reach a terminal raw: C0 controls (ESC, BEL, CR, LF, TAB...), DEL,
 * C1 controls (U+0080-U+009F: U+009B is a CSI on terminals that honour 8-bit controls), the line
 * and paragraph separators U+2028/U+2029, and the bidirectional embeddings, overrides and isolates
 * (U+202A-U+202E, U+2066-U+2069) that reorder how the rest of a line is displayed.
 */
const BEYOND_C0 = "\\x7f-\\x9f\\u2028\\u2029\\u202a-\\u202e\\u2066-\\u2069";
const UNPRINTABLE = new RegExp(`[\\x00-\\x1f${BEYOND_C0}]`, "gu");
/** The same, to test (without the state a global expression keeps): most text has none. */
const HAS_UNPRINTABLE = new RegExp(UNPRINTABLE.source, "u");
/** The unprintable characters `JSON.stringify` leaves raw (it escapes C0 controls in strings). */
const RAW_IN_JSON = new RegExp(`[${BEYOND_C0}]`, "gu");

const NAMED_ESCAPES: Readonly<Record<string, string>> = { "\n": "\\n", "\r": "\\r", "\t": "\\t" };

function hex(code: number, digits: number): string {
  return code.toString(16).padStart(digits, "0");
}

/**
 * `text` with every unprintable character written as a visible escape: `\n`, `\r`, `\t`, `\x1b`
 * (up to U+00FF), `\u202e` (above), so that a message stays one line and cannot drive the terminal.
 * Applying it twice changes nothing.
 */
export function printable(text: string): string {
  if (!HAS_UNPRINTABLE.test(text)) return text;
  return text.replace(UNPRINTABLE, (char) => {
    const code = char.charCodeAt(0);
    return NAMED_ESCAPES[char] ?? (code <= 0xff ? `\\x${hex(code, 2)}` : `\\u${hex(code, 4)}`);
  });
}

/**
 * Serialized JSON with the unprintable characters that `JSON.stringify` leaves raw (DEL, C1
 * controls, U+2028/U+2029, bidirectional controls) written as `\uXXXX` escapes: the same JSON
 * value, and nothing that can drive a terminal when the document is printed.
 */
export function escapeJsonText(json: string): string {
  return json.replace(RAW_IN_JSON, (char) => `\\u${hex(char.charCodeAt(0), 4)}`);
}

/**
 * A URL scheme and the separator after it (`https://`; for the special schemes, which the WHATWG
 * URL parser reads without slashes too, also `http:`), then the userinfo up to its last `@`. The
 * authority ends at `/`, `?`, `#` or white space; tabs and line breaks do not end it, because the
 * URL parser removes them (`http://user:pa<TAB>ss@host/` sends `user:pass`).
 */
const USERINFO = /((?:https?|wss?|ftp):[/\\]*|[a-z][a-z0-9+.-]*:\/\/)(?:[^/?#\s]|[\t\n\r])*@/giu;

/**
 * `text` with the credentials of every URL in it hidden: `https://user:secret@host/x` becomes
 * `https://***@host/x` (the user name goes too: a token is often passed as the user name).
 * Applying it twice changes nothing.
 */
export function redactCredentials(text: string): string {
  return text.includes("@") ? text.replace(USERINFO, "$1***@") : text;
}

/** `1 item`, `2 items`: a count with its noun, plural when needed. */
export function count(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? "" : "s"}`;
}

/** True for `scheme://...` (a URL, as opposed to a path, however its scheme is written). */
export function isSchemeUrl(text: string): boolean {
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(text);
}
