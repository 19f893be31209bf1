/** The error type of the registry layer. */

import { AxError } from "../errors.js";

/**
 * A registry file that cannot be read, parsed or followed. The message is one line naming the file
 * or URL (with `:LINE:` where one is known), the image and the field at fault, e.g.
 * `https://x/v0.0.26.toml:14: image "foo": sha256 must be 64 hex digits`.
 */
export class RegistryError extends AxError {
  constructor(message: string, options: { hint?: string; cause?: unknown } = {}) {
    super(message, options);
    this.name = "RegistryError";
  }
}
