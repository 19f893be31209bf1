/** Types of the registry format (see the README's "Registry format"). */

/** One `[[images]]` entry of a registry file. */
export interface ImageEntry {
  /** Image name: `[A-Za-z0-9][A-Za-z0-9._+-]*`. */
  name: string;
  /** Image version, same character set as the name. */
  version: string;
  /** Human description. */
  description: string;
  /** sha256 of the archive file, 64 lower-case hex digits (upper case is normalized on parse). */
  sha256: string;
  /** CPU architecture, e.g. `aarch64`. */
  arch: string;
  /** Where the archive is: `http(s)://`, `file://` or `oci://`. */
  url: string;
  /** RFC 3339 release time, as written in the file; entries without it sort earliest. */
  released_at?: string;
}

/** One `[[includes]]` entry: another registry file to merge. */
export interface IncludeEntry {
  /** Absolute URL, or relative to the including file's URL. */
  url: string;
}

/** A parsed registry file. */
export interface RegistryFile {
  includes: IncludeEntry[];
  images: ImageEntry[];
}

/** `NAME` or `NAME:VERSION` as given on the command line. */
export interface ImageSpec {
  name: string;
  /** Absent: the entry with the latest `released_at`. */
  version?: string;
}
