/**
 * A raw tar writer for tests: builds ustar/GNU/v7 headers byte by byte, so tests can make archives
 * that no well-behaved tool would (absolute names, `..`, bad checksums, negative sizes, odd types,
 * names that are not UTF-8, hand-made sparse maps).
 */

/** One archive member, as raw as a test needs it. */
export interface RawMember {
  /**
   * The name field (raw bytes when a Buffer); names over 100 bytes go into the ustar prefix field
   * when they can.
   */
  name: string | Buffer;
  /** Typeflag character: `0` file (default), `1` hard link, `2` symlink, `5` directory, ... */
  type?: string;
  /** Content; its length is the size field unless `size` or `sizeField` says otherwise. */
  data?: Buffer | string;
  /** Permission bits (default 0o644, or 0o755 for directories). */
  mode?: number;
  /** Modification time in seconds (default 1_700_000_000). */
  mtime?: number;
  /** Link target (hard or symbolic link), raw bytes when a Buffer. */
  linkname?: string | Buffer;
  /** Size field value when it must differ from the data length. */
  size?: number;
  /** The 12 raw bytes of the size field (e.g. a base-256 negative number). */
  sizeField?: Buffer;
  /** Store a wrong checksum. */
  badChecksum?: boolean;
  /** Owner ids (default 0). */
  uid?: number;
  gid?: number;
  /** The magic field: POSIX `ustar\0` "00" (default), GNU `ustar  \0`, or none (v7). */
  magic?: "ustar" | "gnu" | "v7";
  /** Bytes to write over the header at given offsets (before the checksum is computed). */
  patch?: [number, Buffer][];
}

const BLOCK = 512;

function octal(value: number, width: number): string {
  return value.toString(8).padStart(width - 1, "0") + "\0";
}

function splitName(name: string | Buffer): { name: Buffer; prefix: Buffer } {
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
  const magic = member.magic ?? "ustar";
  if (magic !== "v7") block.write(magic === "gnu" ? "ustar  \0" : "ustar\x0000", 257, "latin1");
  prefix.copy(block, 345);
  for (const [offset, bytes] of member.patch ?? []) bytes.copy(block, offset);
  return fixChecksum(block, member.badChecksum ? 1 : 0);
}

/** Writes the checksum of the header block that opens `archive` (plus `error`); returns it. */
export function fixChecksum(archive: Buffer, error = 0): Buffer {
  archive.fill(0x20, 148, 156);
  let sum = error;
  for (const byte of archive.subarray(0, BLOCK)) sum += byte;
  archive.write(octal(sum, 7) + " ", 148, "latin1");
  return archive;
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

/**
 * A pax extended header (`x`, or `g` for a global one) carrying `records` (an object, or a list
 * of key and value pairs when keys repeat; values may be raw bytes) for the members that follow.
 */
export function pax(
  records: Record<string, string | Buffer> | [string, string | Buffer][],
  type = "x",
): Buffer {
  const entries = Array.isArray(records) ? records : Object.entries(records);
  const lines = entries.map(([key, value]) => {
    const body = Buffer.concat([Buffer.from(` ${key}=`), Buffer.from(value), Buffer.from("\n")]);
    let length = body.length + 1;
    while (String(length).length + body.length !== length) length += 1;
    return Buffer.concat([Buffer.from(String(length)), body]);
  });
  return member({ name: "PaxHeader", type, data: Buffer.concat(lines) });
}

/** A GNU long-name (`L`) header carrying `name` for the member that follows. */
export function gnuLongName(name: string): Buffer {
  return member({ name: "././@LongLink", type: "L", data: `${name}\0` });
}

/**
 * An old GNU sparse member (type `S`, GNU magic) of a `realSize`-byte file whose data stretches
 * are `map` (offset, length): 4 map entries in the header, 21 in each extension block. `data` is
 * the member's stored data (by default each stretch padded to 512 bytes as GNU tar stores it,
 * with the stretches' bytes taken from `content`); `size` overrides the size field.
 */
export function oldGnuSparse(options: {
  name: string;
  realSize: number;
  map: [number, number][];
  content?: Buffer;
  data?: Buffer;
  size?: number;
}): Buffer {
  const { map, realSize } = options;
  const field = (value: number) => Buffer.from(octal(value, 12), "latin1");
  const slots = (entries: [number, number][], at: number): [number, Buffer][] =>
    entries.flatMap(([offset, length], i) => [
      [at + 24 * i, field(offset)],
      [at + 24 * i + 12, field(length)],
    ]);
  const content = options.content ?? Buffer.alloc(realSize);
  const last = map.findLastIndex(([, length]) => length > 0);
  const data =
    options.data ??
    Buffer.concat(
      map.map(([offset, length], i) => {
        const stretch = content.subarray(offset, offset + length);
        return i >= last ? stretch : pad(stretch);
      }),
    );
  const rest = map.slice(4);
  const head = header({
    name: options.name,
    type: "S",
    magic: "gnu",
    size: options.size ?? data.length,
    patch: [
      ...slots(map.slice(0, 4), 386),
      [482, Buffer.from([rest.length > 0 ? 1 : 0])],
      [483, field(realSize)],
    ],
  });
  const extensions: Buffer[] = [];
  for (let i = 0; i < rest.length; i += 21) {
    const block = Buffer.alloc(BLOCK);
    for (const [offset, bytes] of slots(rest.slice(i, i + 21), 0)) bytes.copy(block, offset);
    block[504] = i + 21 < rest.length ? 1 : 0;
    extensions.push(block);
  }
  return Buffer.concat([head, ...extensions, pad(data)]);
}

/**
 * A file of `count * step` bytes holding `stretch <i>` at `i * step + at`, and its sparse map:
 * stretches of `length` bytes there, then the `(size, 0)` entry GNU tar ends its maps with.
 */
export function stretches(
  count: number,
  step: number,
  at: number,
  length: number,
): { content: Buffer; map: [number, number][] } {
  const content = Buffer.alloc(count * step);
  const map: [number, number][] = [];
  for (let i = 0; i < count; i++) {
    content.write(`stretch ${i}`, i * step + at);
    map.push([i * step + at, length]);
  }
  map.push([content.length, 0]);
  return { content, map };
}

/** Members followed by the two zero blocks that end an archive. */
export function tar(...parts: Buffer[]): Buffer {
  return Buffer.concat([...parts, Buffer.alloc(2 * BLOCK)]);
}
