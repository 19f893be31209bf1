/** What every operation takes: a way to cancel it and a place for its status lines. */
import type { Logger } from "../log.js";

/** Options shared by every operation. */
export interface OperationOptions {
  /** Cancels the operation (it cleans up, and a download keeps its `.part` for a resume). */
  signal?: AbortSignal;
  /** Status lines and warnings; silent by default. */
  logger?: Logger;
}
