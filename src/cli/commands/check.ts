import { AxError } from "../../errors.js";
import { checkFile } from "../../ops/check.js";
import { result } from "../output.js";

/**
 * `check FILE [--sha256 HEX]`: prints `<sha256>  <absolute path>` as `sha256sum` and axbuild do;
 * with `--sha256`, a digest that differs adds ` (mismatch)` to the line and fails (exit 1).
 */
export async function checkCommand(file: string, options: { sha256?: string }): Promise<void> {
  const checked = await checkFile(file, options.sha256);
  const mismatch = checked.matches === false;
  result(`${checked.sha256}  ${checked.path}${mismatch ? " (mismatch)" : ""}`);
  if (mismatch) throw new AxError(`checksum mismatch for ${checked.path}`);
}
