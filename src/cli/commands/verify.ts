import type { Command } from "commander";
import { AxError } from "../../errors.js";
import { verifyImages } from "../../ops/verify.js";
import { parseSpec } from "../../registry/resolve.js";
import { commandContext } from "../context.js";
import { reportError, result } from "../output.js";

/** `verify [NAME[:VERSION]...] [--repair]`. */
export async function verifyCommand(
  images: string[],
  options: { repair?: boolean },
  command: Command,
): Promise<void> {
  const specs = images.map(parseSpec);
  const ctx = await commandContext(command);
  const verified = await verifyImages(ctx.config, specs, { ...ctx, repair: options.repair });
  if (verified.checks.length === 0) {
    ctx.logger.info(`nothing to verify: the store ${ctx.config.localStorage} holds no images`);
  }
  for (const check of verified.checks) {
    result(check.problem === undefined ? `ok      ${check.copy.path}` : `FAILED  ${check.problem}`);
  }
  if (verified.failed.length === 0) return;
  if (!verified.repairs) {
    throw new AxError(`verification failed: ${verified.failed.join(", ")}`, {
      hint: "run `axvisor-image verify --repair` to pull them again",
    });
  }
  const unrepaired: string[] = [];
  verified.repairs.forEach((outcome, i) => {
    const image = verified.failed[i]!;
    if (outcome.status === "fulfilled") {
      ctx.logger.info(`repaired ${image}: ${outcome.value.path}`);
    } else {
      reportError(outcome.reason);
      unrepaired.push(image);
    }
  });
  if (unrepaired.length > 0) throw new AxError(`could not repair: ${unrepaired.join(", ")}`);
}
