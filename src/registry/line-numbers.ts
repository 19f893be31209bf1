/**
 * Finds the line of a registry entry or key in the TOML text, for error messages and warnings.
 * The TOML parser keeps no positions, so this scans the text for `[[images]]` / `[[includes]]`
 * headers and `key =` lines. It is a best effort: when the headers found do not match the parsed
 * entries (inline tables, headers inside multi-line strings), it gives no line rather than a wrong
 * one.
 */

/** An array of tables the registry format knows. */
export type RegistryTable = "images" | "includes";

/** A `[[images]]` or `[[includes]]` header line (group 1: the table). */
export const ARRAY_HEADER =
  /^[ \t]*\[\[[ \t]*["']?(images|includes)["']?[ \t]*\]\][ \t]*(?:#.*)?\r?$/;

/** Line numbers (1-based) of the entries and keys of one TOML text; built only when needed. */
export class LineLocator {
  private readonly lines: string[];
  private headers: Map<RegistryTable, number[]> | undefined;

  constructor(text: string) {
    this.lines = text.split("\n");
  }

  /**
   * Line of `key` inside entry `index` of `table` (or of the entry's header when the key is not
   * written there), given that the parsed document has `count` entries in that table.
   */
  entryLine(table: RegistryTable, index: number, count: number, key?: string): number | undefined {
    const starts = this.headerLines(table);
    if (starts.length !== count) return undefined;
    const header = starts[index];
    if (header === undefined) return undefined;
    if (key !== undefined) {
      for (let i = header + 1; i < this.lines.length; i++) {
        const line = this.lines[i] ?? "";
        if (line.trimStart().startsWith("[")) break;
        if (definesKey(line, key)) return i + 1;
      }
    }
    return header + 1;
  }

  /** Line where the top-level `key` is defined (`key = ...` or a `[key...]` header). */
  topLevelLine(key: string): number | undefined {
    for (let i = 0; i < this.lines.length; i++) {
      const text = (this.lines[i] ?? "").trimStart().replace(/^\[+[ \t]*/, "");
      if (followedBy(text, key, /^[ \t]*[=.\]]/)) return i + 1;
    }
    return undefined;
  }

  private headerLines(table: RegistryTable): number[] {
    if (!this.headers) {
      this.headers = new Map([
        ["images", []],
        ["includes", []],
      ]);
      for (let i = 0; i < this.lines.length; i++) {
        const m = ARRAY_HEADER.exec(this.lines[i] ?? "");
        if (m) this.headers.get(m[1] as RegistryTable)?.push(i);
      }
    }
    return this.headers.get(table) ?? [];
  }
}

/** True when `line` is `key = ...` (the key bare, or in single or double quotes). */
function definesKey(line: string, key: string): boolean {
  return followedBy(line.trimStart(), key, /^[ \t]*=/);
}

/** True when `text` starts with `key` (bare or quoted) and then matches `next`. */
function followedBy(text: string, key: string, next: RegExp): boolean {
  for (const written of [key, `"${key}"`, `'${key}'`]) {
    if (text.startsWith(written) && next.test(text.slice(written.length))) return true;
  }
  return false;
}
