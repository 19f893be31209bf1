import { CommanderError, type Command } from "commander";
import { AxError } from "../errors.js";
import { buildProgram } from "./program.js";

function printError(err: unknown): number {
  const debug = process.env.AXVISOR_IMAGE_DEBUG === "1";
  if (err instanceof AxError) {
    process.stderr.write(`error: ${err.message}\n`);
    if (err.hint) process.stderr.write(`hint: ${err.hint}\n`);
    if (debug && err.stack) process.stderr.write(`${err.stack}\n`);
    return err.exitCode;
  }
  const message = err instanceof Error ? err.message : String(err);
  process.stderr.write(`error: internal error: ${message}\n`);
  if (debug && err instanceof Error && err.stack) process.stderr.write(`${err.stack}\n`);
  else process.stderr.write("hint: set AXVISOR_IMAGE_DEBUG=1 for a stack trace\n");
  return 1;
}

/** Runs the CLI with `argv` (as `process.argv`) and returns the exit status. */
export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  const overrideExits = (command: Command): void => {
    command.exitOverride();
    command.commands.forEach(overrideExits);
  };
  overrideExits(program);
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === "commander.helpDisplayed" || err.code === "commander.version") return 0;
      if (err.code === "commander.help" || err.exitCode === 0) return 0;
      return 2; // commander already printed "error: ..."
    }
    return printError(err);
  }
}

const status = await main(process.argv);
// Exit explicitly once output is flushed: idle keep-alive sockets must not hold the process open.
await new Promise((done) => process.stdout.write("", done));
await new Promise((done) => process.stderr.write("", done));
process.exit(status);
