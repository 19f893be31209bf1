/**
 * A raw tar writer for tests: builds ustar/GNU headers byte by byte, so tests can make archives
 * that no well-behaved tool would (absolute names, `..`, bad checksums, negative sizes, odd types).
 */

/** One archive member, as raw as a test needs it. */
export interface RawMember {
  /** The name field; names over 100 bytes go into the ustar prefix field when they can. */
  name: string;
  /** Typeflag character: `0` file (default), `1` hard link, `2` symlink, `5` directory, ... */
  type?: string;
  /** Content; its length is the size field unless `size` or `sizeField` says otherwise. */
  data?: Buffer | string;
  /** Permission bits (default 0o644, or 0o755 for directories). */
  mode?: number;
  /** Modification time in seconds (default 1_700_000_000). */
  mtime?: number;
  /** Link target (hard or symbolic link). */
  linkname?: string;
  /** Size field value when it must differ from the data length. */
  size?: number;
  /** The 12 raw bytes of the size field (e.g. a base-256 negative number). */
  sizeField?: Buffer;
  /** Store a wrong checksum. */
  badChecksum?: boolean;
  /** Owner ids (default 0). */
  uid?: number;
  gid?: number;
}

const BLOCK = 512;

function octal(value: number, width: number): string {
  return value.toString(8).padStart(width - 1, "0") + "\0";
}

function splitName(name: string): { name: Buffer; prefix: Buffer } {
  const bytes = Buffer.from(name);
  if (bytes.length <= 100) return { name: bytes, prefix: Buffer.alloc(0) };
  for (let cut = bytes.indexOf(0x2f); cut !== -1; cut = bytes.indexOf(0x2f, cut + 1)) {
    const rest = bytes.subarray(cut + 1);
    if (cut <= 155 && rest.length <= 100) return { name: rest, prefix: bytes.subarray(0, cut) };
  }
  throw new Error(`name too long for a ustar header (use pax): ${name}`);
}

/** The 512-byte header of `member`. */
export function header(member: RawMember): Buffer {
  const block = Buffer.alloc(BLOCK);
  const type = member.type ?? "0";
  const dataLength = member.data === undefined ? 0 : Buffer.byteLength(member.data);
  const { name, prefix } = splitName(member.name);
  name.copy(block, 0);
  block.write(octal(member.mode ?? (type === "5" ? 0o755 : 0o644), 8), 100, "latin1");
  block.write(octal(member.uid ?? 0, 8), 108, "latin1");
  block.write(octal(member.gid ?? 0, 8), 116, "latin1");
  if (member.sizeField) member.sizeField.copy(block, 124);
  else block.write(octal(member.size ?? dataLength, 12), 124, "latin1");
  block.write(octal(member.mtime ?? 1_700_000_000, 12), 136, "latin1");
  block.write(type, 156, "latin1");
  if (member.linkname !== undefined) Buffer.from(member.linkname).copy(block, 157, 0, 100);
  block.write("ustar\x0000", 257, "latin1");
  prefix.copy(block, 345);
  block.fill(0x20, 148, 156);
  let sum = 0;
  for (const byte of block) sum += byte;
  if (member.badChecksum) sum += 1;
  block.write(octal(sum, 7) + " ", 148, "latin1");
  return block;
}

/** Pads `data` with zeros to a whole number of 512-byte blocks. */
export function pad(data: Buffer): Buffer {
  const rest = data.length % BLOCK;
  return rest === 0 ? data : Buffer.concat([data, Buffer.alloc(BLOCK - rest)]);
}

/** Header plus padded data of `member`. */
export function member(member: RawMember): Buffer {
  const data = member.data === undefined ? Buffer.alloc(0) : Buffer.from(member.data);
  return Buffer.concat([header(member), pad(data)]);
}

/** A pax extended header (`x`) carrying `records` for the member that follows. */
export function pax(records: Record<string, string>, type = "x"): Buffer {
  const lines = Object.entries(records).map(([key, value]) => {
    const body = ` ${key}=${value}\n`;
    let length = Buffer.byteLength(body) + 1;
    while (String(length).length + Buffer.byteLength(body) !== length) length += 1;
    return `${length}${body}`;
  });
  return member({ name: "PaxHeader", type, data: lines.join("") });
}

/** A GNU long-name (`L`) header carrying `name` for the member that follows. */
export function gnuLongName(name: string): Buffer {
  return member({ name: "././@LongLink", type: "L", data: `${name}\0` });
}

/** Members followed by the two zero blocks that end an archive. */
export function tar(...parts: Buffer[]): Buffer {
  return Buffer.concat([...parts, Buffer.alloc(2 * BLOCK)]);
}
