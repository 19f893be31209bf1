/**
 * What every operation takes (a way to cancel it, a place for its status lines), and the defaults
 * and choices of the operation options the CLI shows in its help (this module loads nothing).
 */
import type { Logger } from "../log.js";

/** Options shared by every operation. */
export interface OperationOptions {
  /** Cancels the operation (it cleans up, and a download keeps its `.part` for a resume). */
  signal?: AbortSignal;
  /** Status lines and warnings; silent by default. */
  logger?: Logger;
}

/** Up to this many images are pulled at once by `pullMany` (`pull -j`). */
export const DEFAULT_PULL_CONCURRENCY = 3;

/** The formats `ci-key --format` prints (see `ops/ci-key.ts`). */
export const CI_KEY_FORMATS = ["github", "gitlab", "json"] as const;

/** One of {@link CI_KEY_FORMATS}. */
export type CiKeyFormat = (typeof CI_KEY_FORMATS)[number];
