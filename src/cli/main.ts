import { CommanderError, type Command } from "commander";
import { reportError, watchOutputStreams } from "./output.js";
import { buildProgram, prepareToParse } from "./program.js";

/** Runs the CLI with `argv` (as `process.argv`) and returns the exit status. */
export async function main(argv: string[]): Promise<number> {
  const program = prepareToParse(buildProgram(), argv.slice(2));
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
    return reportError(err);
  }
}

watchOutputStreams();
const status = await main(process.argv);
// Exit explicitly once output is flushed: idle keep-alive sockets must not hold the process open.
await new Promise((done) => process.stdout.write("", done));
await new Promise((done) => process.stderr.write("", done));
process.exit(status);
