/**
 * Archive file names: the extensions a guest-image archive may have, and the compression each
 * names. A name only names a file (the store's archive, an OCI layer's title and media type): the
 * decoder is always chosen from the bytes (`detect.ts`). A new format is one line here and its
 * decoder there.
 */

/** The compression an archive extension names. */
export type Compression = "gzip" | "xz" | "zstd" | "none";

/** Every archive extension, longest first where one ends another (`.tar.gz` before `.tar`). */
const FORMATS: readonly { extension: string; compression: Compression }[] = [
  { extension: ".tar.gz", compression: "gzip" },
  { extension: ".tar.xz", compression: "xz" },
  { extension: ".tar.zst", compression: "zstd" },
  { extension: ".tgz", compression: "gzip" },
  { extension: ".txz", compression: "xz" },
  { extension: ".tar", compression: "none" },
];

/** The archive extensions, in the order they are matched (`.tar.gz` wins over `.tar`). */
export const ARCHIVE_EXTENSIONS: readonly string[] = FORMATS.map((f) => f.extension);

/** The archive extension `fileName` ends with, compared in lower case; undefined when none. */
export function archiveExtension(fileName: string): string | undefined {
  const name = fileName.toLowerCase();
  return ARCHIVE_EXTENSIONS.find((ext) => name.endsWith(ext));
}

/** The compression `fileName`'s extension names: `none` for `.tar` and for unknown names. */
export function compressionOf(fileName: string): Compression {
  const ext = archiveExtension(fileName);
  return FORMATS.find((f) => f.extension === ext)?.compression ?? "none";
}

/**
 * The extension the store gives an archive of `compression`: `.tar.gz`, `.tar.xz`, `.tar.zst`,
 * `.tar`.
 */
export function extensionOf(compression: Compression): string {
  return FORMATS.find((f) => f.compression === compression)!.extension;
}

/**
 * What a source says of the name of an archive its URL does not name (an `oci://` reference):
 * the file name its publisher gave it (an OCI layer's title), and the compression its media type
 * or its first bytes show. The store decides the name from them.
 */
export interface ArchiveNaming {
  /** The publisher's file name for it, if any (it may not end like an archive). */
  title?: string;
  /** Its compression, when the source knows it. */
  compression?: Compression;
}
