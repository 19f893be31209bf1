import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { Argument, Command, Option } from "commander";
import { ARCHIVE_EXTENSIONS } from "../archive/extensions.js";
import { parseThreshold, type ConfigOverrides } from "../config/config.js";
import { UsageError } from "../errors.js";
import { CI_KEY_FORMATS, DEFAULT_PULL_CONCURRENCY } from "../ops/options.js";
import { DEFAULT_LOW_SPEED, DEFAULT_STALL_TIMEOUT_MS } from "../transfer/tuning.js";
import { displayText } from "./output.js";

/** What the ARCHIVE argument of `registry add` and `publish` is. */
const ARCHIVE_ARGUMENT = `the image archive (${ARCHIVE_EXTENSIONS.join(", ")})`;

/** What `--key` of `registry add` and `publish` does. */
const RESIGN_KEY = "re-sign the registry file with this minisign secret key (FILE.minisig)";

/** The shells `completion` writes scripts for. */
export const SHELLS = ["bash", "zsh", "fish"] as const;

/** Global options, as commander parses them. */
export interface GlobalOptions {
  localStorage?: string;
  downloadDir?: string;
  extractDir?: string;
  registry?: string;
  autoSync?: boolean;
  autoSyncThreshold?: string;
  config?: string;
  quiet?: boolean;
  mirror?: string[];
  requireSignatures?: boolean;
  offline?: boolean;
}

function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as {
    version: string;
  };
  return pkg.version;
}

/** Turns the global options into configuration overrides (flags win over everything). */
export async function overridesFrom(program: Command): Promise<ConfigOverrides> {
  const opts = program.opts<GlobalOptions>();
  const overrides: ConfigOverrides = {};
  const { localStorage, downloadDir } = opts;
  if (localStorage !== undefined && downloadDir !== undefined) {
    if (resolve(localStorage) !== resolve(downloadDir)) {
      throw new UsageError("-S and -D name different directories", {
        hint: "they are the same setting (the store, where archives go; -D is axbuild's name): give one",
      });
    }
  }
  if (localStorage ?? downloadDir) overrides.localStorage = localStorage ?? downloadDir;
  if (opts.extractDir !== undefined) overrides.extractDir = opts.extractDir;
  if (opts.registry !== undefined) overrides.registry = opts.registry;
  if (program.getOptionValueSource("autoSync") === "cli") overrides.autoSync = opts.autoSync;
  if (opts.autoSyncThreshold !== undefined) {
    overrides.autoSyncThreshold = parseThreshold(opts.autoSyncThreshold, "--auto-sync-threshold");
  }
  if (opts.offline) overrides.offline = true;
  if (opts.mirror && opts.mirror.length > 0) {
    const { parseMirrorFlag } = await import("../config/mirrors.js");
    overrides.mirrors = opts.mirror.map(parseMirrorFlag);
  }
  if (opts.requireSignatures) overrides.requireSignatures = true;
  return overrides;
}

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

function nonEmpty(name: string) {
  return (value: string): string => {
    if (value.trim() === "") throw new UsageError(`${name} needs a value`);
    return value;
  };
}

/** A parser of whole numbers >= `min` for the option `name`. */
function wholeNumber(name: string, min = 0) {
  return (value: string): number => {
    if (!/^\d+$/.test(value) || Number(value) < min) {
      const bound = min > 0 ? ` >= ${min}` : "";
      throw new UsageError(`${name} must be a whole number${bound}, got "${value}"`);
    }
    return Number(value);
  };
}

/**
 * Commander's writer for `stream`: each text through the output boundary, and the pieces written
 * in one tick (help, then the text of `addHelpText`) joined into one write, so that a reader that
 * stops after the first line (`--help | head -1`) already has all of it.
 */
function coalesced(stream: NodeJS.WriteStream): (text: string) => void {
  let pending = "";
  return (text) => {
    if (pending === "") {
      queueMicrotask(() => {
        stream.write(pending);
        pending = "";
      });
    }
    pending += displayText(text);
  };
}

/**
 * Commander's error output, with its suggestion (`(Did you mean pull?)`) turned into a `hint:`
 * line like every other hint of the tool.
 */
function commanderError(text: string, write: (text: string) => void): void {
  write(text.replace(/\n\(Did you mean (.+)\?\)\n?$/, "\nhint: did you mean $1?\n"));
}

/** Runs a command's action, loading its implementation only when it is used. */
type Lazy = (...args: unknown[]) => Promise<void>;
function lazy(load: () => Promise<Lazy>): Lazy {
  return async (...args) => (await load())(...args);
}

/**
 * The command-line program. Command implementations live in `commands.ts` and are imported only
 * when a command runs, so `--help` stays fast.
 */
export function buildProgram(): Command {
  const program = new Command("axvisor-image");
  program
    .description(
      "Guest-image manager for the AxVisor hypervisor: list, pull and manage guest images",
    )
    .version(packageVersion(), "-V, --version", "print the version")
    .helpOption("-h, --help", "show help")
    .configureOutput({
      writeOut: coalesced(process.stdout),
      writeErr: coalesced(process.stderr),
      outputError: commanderError,
    })
    .option(
      "-S, --local-storage <dir>",
      "store directory (default: ~/.cache/axvisor-image)",
      nonEmpty("--local-storage"),
    )
    .option(
      "-D, --download-dir <dir>",
      "the store, by axbuild's name: where the registry and archives go (same as -S)",
      nonEmpty("--download-dir"),
    )
    .option(
      "-E, --extract-dir <dir>",
      "put extracted trees here instead of the store",
      nonEmpty("--extract-dir"),
    )
    .option(
      "-R, --registry <name|url>",
      "registry to sync from: axvisor (default), tgos, a URL or a path",
      nonEmpty("--registry"),
    )
    .option("-N, --no-auto-sync", "never sync the registry automatically")
    .option("--auto-sync-threshold <secs>", "re-sync a registry older than this (0 = never)")
    .option(
      "-c, --config <file>",
      "configuration file (default: nearest .image.toml)",
      nonEmpty("--config"),
    )
    .option(
      "--mirror <prefix=replacement>",
      "rewrite URLs starting with prefix (repeatable)",
      collect,
    )
    .option("--require-signatures", "refuse a registry no pinned key signed ([[trust]])")
    .option("--offline", "no network at all: no sync, pull only from the store")
    .option("-q, --quiet", "print only results, warnings and errors")
    .showSuggestionAfterError(true)
    .addHelpText(
      "after",
      "\nEnvironment: AXVISOR_IMAGE_LOCAL_STORAGE, AXVISOR_REGISTRY_FALLBACK_URL,\n" +
        "AXVISOR_IMAGE_REGISTRY_BASE_URL, axbuild's TGOS_IMAGE_LOCAL_STORAGE, TGOS_IMAGE_DOWNLOAD_DIR,\n" +
        "TGOS_IMAGE_EXTRACT_DIR, TGOS_IMAGE_REGISTRY_FALLBACK_URL (ours first when both are set),\n" +
        "HTTPS_PROXY, HTTP_PROXY, NO_PROXY, NO_COLOR, AXVISOR_IMAGE_OFFLINE=1 (as --offline),\n" +
        "AXVISOR_IMAGE_DEBUG=1 (stack traces on errors).",
    );

  program
    .command("ls")
    .description("list the images the registry offers")
    .argument("[pattern]", "regular expression (or substring) matched against image names")
    .option("-v, --verbose", "one row per version")
    .option("--json", "print the rows as JSON, with each version's local state (see README)")
    .option("--local", "what the store holds and its size (same as `du`)")
    .addOption(
      new Option(
        "--names",
        "image names only, from the store's registry (for completion)",
      ).hideHelp(),
    )
    .addOption(new Option("--versions", "with --names: NAME:VERSION lines").hideHelp())
    .addOption(new Option("--stored", "with --names: only what the store holds").hideHelp())
    .action(lazy(async () => (await import("./commands/ls.js")).lsCommand as Lazy));

  program
    .command("pull")
    .alias("download")
    .description("download, verify and extract images into the store; prints each image's path")
    .argument(
      "[image...]",
      "NAME (latest release) or NAME:VERSION; with --arch, a rootfs alias (alpine, busybox, debian); none: the lock file's",
    )
    .option(
      "--arch <arch>",
      "that architecture's rootfs: its default (rootfs-ARCH-alpine.img), or the aliases given",
    )
    .option("--file", "print the file named like the image in its tree (a rootfs .img)")
    .option("--locked", "pull exactly the lock file's entries: no sync, no registry")
    .addOption(lockFileOption())
    .option(
      "-o, --output <dir>",
      "put archives and trees in this directory instead of the store",
      nonEmpty("--output"),
    )
    .option("--no-extract", "keep only the verified archive; print its path")
    .option("--verify", "hash present archives even when unchanged since they were last verified")
    .addOption(
      new Option("--stall-timeout <secs>", "abandon and resume a connection silent this long")
        .default(DEFAULT_STALL_TIMEOUT_MS / 1000)
        .argParser(wholeNumber("--stall-timeout", 1)),
    )
    .addOption(
      new Option("--speed-limit <bytes>", "abandon and resume a download slower than this (B/s)")
        .default(DEFAULT_LOW_SPEED.bytesPerSecond)
        .argParser(wholeNumber("--speed-limit")),
    )
    .addOption(
      new Option("--speed-time <secs>", "... averaged over this long (0 = no speed limit)")
        .default(DEFAULT_LOW_SPEED.seconds)
        .argParser(wholeNumber("--speed-time")),
    )
    .addOption(
      new Option("-j, --jobs <n>", "images downloaded at once")
        .default(DEFAULT_PULL_CONCURRENCY)
        .argParser(wholeNumber("--jobs", 1)),
    )
    .option("--json", "print a JSON array, one object per image in argument order (see README)")
    .action(lazy(async () => (await import("./commands/pull.js")).pullCommand as Lazy));

  program
    .command("lock")
    .description("resolve images and write them, exactly, into the lock file")
    .argument("[image...]", "NAME (newest) or NAME:VERSION (none: every image already locked)")
    .option("--update", "move locked images to the registry's newest versions")
    .addOption(lockFileOption())
    .action(lazy(async () => (await import("./commands/lock.js")).lockCommand as Lazy));

  program
    .command("ci-key")
    .description("print a CI cache key for the locked (or named) images and the path to cache")
    .argument("[image...]", "NAME or NAME:VERSION (none: the lock file's images)")
    .addOption(
      new Option("--format <format>", "github ($GITHUB_OUTPUT), gitlab (dotenv) or json")
        .choices(CI_KEY_FORMATS)
        .default("github"),
    )
    .addOption(lockFileOption())
    .action(lazy(async () => (await import("./commands/ci-key.js")).ciKeyCommand as Lazy));

  program
    .command("rm")
    .description("remove images (archive and tree) from the store")
    .argument("<image...>", "NAME (all versions) or NAME:VERSION")
    .action(lazy(async () => (await import("./commands/rm.js")).rmCommand as Lazy));

  program
    .command("sync")
    .description("fetch the registry (and its includes) into the store")
    .option("--allow-empty", "accept a registry that lists no images")
    .option(
      "--allow-shrink",
      "accept a registry that drops more than half of the images the store's registry lists",
    )
    .action(lazy(async () => (await import("./commands/sync.js")).syncCommand as Lazy));

  program
    .command("config")
    .description("print the effective configuration and where each value came from")
    .action(lazy(async () => (await import("./commands/config.js")).configCommand as Lazy));

  program
    .command("defconfig")
    .description("write the default .image.toml in the working directory")
    .option("-f, --force", "overwrite an existing .image.toml")
    .action(lazy(async () => (await import("./commands/config.js")).defconfigCommand as Lazy));

  registerEverydayCommands(program);
  return program;
}

/** `--lock FILE`: the lock file of `pull`, `lock` and `ci-key`. */
function lockFileOption(): Option {
  return new Option(
    "--lock <file>",
    "the lock file (default: axvisor-image.lock beside the nearest .image.toml)",
  ).argParser(nonEmpty("--lock"));
}

/** The command word in `args` (the first operand), skipping the program's options and values. */
function firstOperand(program: Command, args: string[]): string | undefined {
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === "--") return args[i + 1];
    if (!arg.startsWith("-")) return arg;
    if (program.options.find((o) => o.short === arg || o.long === arg)?.required) i++;
  }
  return undefined;
}

/** Commands whose subcommands take `--version` as an alias of `--image-version`. */
const OWN_VERSION_OPTION = ["registry", "publish"];

/**
 * Prepares `program` to parse `args` (the arguments after the script). Global options may follow
 * the command (`pull IMAGE -q`), as commander has it by default, except after `registry` and
 * `publish`: there every option belongs to the subcommand (commander's positional options), so
 * that their `--version`, an alias of `--image-version`, is the image's, not the tool's.
 */
export function prepareToParse(program: Command, args: string[]): Command {
  return program.enablePositionalOptions(
    OWN_VERSION_OPTION.includes(firstOperand(program, args) ?? ""),
  );
}

/**
 * The image's version, `--image-version <version>` (required), with `--version` accepted as a
 * hidden alias (see {@link prepareToParse}).
 */
function imageVersionOption(command: Command): Command {
  return command
    .requiredOption("--image-version <version>", "image version")
    .addOption(new Option("--version <version>", "alias of --image-version").hideHelp())
    .on("option:version", (value: string) => {
      command.setOptionValueWithSource("imageVersion", value, "cli");
    });
}

/** `info`, `path`, `verify`, `prune`, `du`, `check`, `resize`, `registry` and `completion`. */
function registerEverydayCommands(program: Command): void {
  program
    .command("info")
    .description("every version the registry has of an image, and which are in the store")
    .argument("<image>", "NAME (every version) or NAME:VERSION")
    .option("--json", "print a JSON array of versions, newest first (see README)")
    .action(lazy(async () => (await import("./commands/info.js")).infoCommand as Lazy));

  program
    .command("path")
    .description("print the extracted tree of an image already pulled (no network access)")
    .argument("<image>", "NAME (the latest release) or NAME:VERSION")
    .option("--file", "the file named like the image in the tree (a rootfs .img), not the tree")
    .addHelpText(
      "after",
      "\nExamples: KERNEL=$(axvisor-image path qemu_aarch64_linux)/qemu-aarch64\n" +
        "          ROOTFS=$(axvisor-image path --file rootfs-aarch64-alpine.img)",
    )
    .action(lazy(async () => (await import("./commands/path.js")).pathCommand as Lazy));

  program
    .command("verify")
    .description("hash archives against the registry and check trees against their markers")
    .argument("[image...]", "NAME or NAME:VERSION (default: every image in the store)")
    .option("--repair", "pull the images that fail again")
    .action(lazy(async () => (await import("./commands/verify.js")).verifyCommand as Lazy));

  program
    .command("prune")
    .description("remove what no registry entry owns, and leftovers of interrupted work")
    .option("-n, --dry-run", "print what would be removed, remove nothing")
    .addOption(
      new Option("--keep <n>", "also remove all but the N newest versions of each image").argParser(
        wholeNumber("--keep", 1),
      ),
    )
    .action(lazy(async () => (await import("./commands/prune.js")).pruneCommand as Lazy));

  program
    .command("du")
    .description("what the store holds and its size (also `ls --local`)")
    .option("--json", "print a JSON document (see README)")
    .action(lazy(async () => (await import("./commands/du.js")).duCommand as Lazy));

  program
    .command("check")
    .description("print a file's sha256 (as sha256sum); with --sha256, fail when it differs")
    .argument("<file>", "the file to hash, e.g. a rootfs .img or an archive")
    .option("--sha256 <hex>", "the expected sha256 (64 hex digits, either case)")
    .action(lazy(async () => (await import("./commands/check.js")).checkCommand as Lazy));

  program
    .command("resize")
    .description("grow an ext2/3/4 file-system image (e2fsck -fy, then resize2fs); never shrinks")
    .argument("<image-file>", "the ext2/3/4 image, e.g. a guest's rootfs.img")
    .addOption(
      new Option("--size-mib <n>", "the new size in MiB")
        .argParser(wholeNumber("--size-mib", 1))
        .makeOptionMandatory(),
    )
    .option(
      "-o, --output <file>",
      "write the grown image here; leave the original as it is",
      nonEmpty("--output"),
    )
    .action(lazy(async () => (await import("./commands/resize.js")).resizeCommand as Lazy));

  const registry = program.command("registry").description("edit and check registry files");
  const add = registry
    .command("add")
    .description("add an image to a registry file (or update it): computes the archive's sha256")
    .argument("<archive>", ARCHIVE_ARGUMENT)
    .requiredOption("--file <file>", "the registry file to edit (created when missing)")
    .requiredOption("--name <name>", "image name");
  imageVersionOption(add)
    .option("--arch <arch>", "CPU architecture (required for a new image)")
    .option("--description <text>", "description (required for a new image)")
    .option("--url <url>", "where the archive will be downloaded from (required for a new image)")
    .option("--released-at <time>", "RFC 3339 release time (default for a new image: now)")
    .option("--key <secret-key>", RESIGN_KEY)
    .action(lazy(async () => (await import("./commands/registry.js")).registryAddCommand as Lazy));
  registry
    .command("check")
    .description("lint a registry and its includes the way sync reads them; list every problem")
    .argument("<registry>", "registry file or URL")
    .option("--online", "also send a HEAD request for every image URL")
    .action(
      lazy(async () => (await import("./commands/registry.js")).registryCheckCommand as Lazy),
    );
  registry
    .command("sign")
    .description("sign registry files: writes FILE.minisig beside each (minisign format)")
    .argument("<file...>", "the registry file, and each of its includes")
    .requiredOption("--key <secret-key>", "minisign secret key (registry keygen, or minisign -G)")
    .action(lazy(async () => (await import("./commands/registry.js")).registrySignCommand as Lazy));
  registry
    .command("keygen")
    .description("make a minisign key pair to sign registries with; prints the public key")
    .requiredOption("--key <secret-key>", "where the secret key goes, e.g. minisign.key")
    .option("--public-key <file>", "where the public key goes (default: KEY with .pub for .key)")
    .option("--unencrypted", "store the secret key without a password (as minisign -G -W)")
    .option("--force", "replace existing key files")
    .action(
      lazy(async () => (await import("./commands/registry.js")).registryKeygenCommand as Lazy),
    );

  const publish = program
    .command("publish")
    .description(
      "push an archive to an OCI registry (or take its URL) and add it to a registry file",
    )
    .argument("<archive>", ARCHIVE_ARGUMENT)
    .requiredOption("--name <name>", "image name");
  imageVersionOption(publish)
    .requiredOption("--arch <arch>", "CPU architecture, e.g. aarch64")
    .requiredOption("--description <text>", "description")
    .option("--released-at <time>", "RFC 3339 release time (default for a new image: now)")
    .option(
      "--to <oci-url>",
      "push to oci://HOST[:PORT]/REPOSITORY:TAG (the entry pins its digest)",
    )
    .option("--url <url>", "the archive is served here already: upload nothing")
    .requiredOption("--registry-file <file>", "the registry file to add the image to")
    .option("--key <secret-key>", RESIGN_KEY)
    .action(lazy(async () => (await import("./commands/publish.js")).publishCommand as Lazy));

  program
    .command("mirror")
    .description(
      "copy images to a directory or an OCI registry and write a registry file serving them there",
    )
    .argument("[image...]", "NAME (every version) or NAME:VERSION (default: every image)")
    .requiredOption("--to <dest>", "a directory, or oci://HOST[:PORT]/REPOSITORY")
    .option(
      "--registry-file <file>",
      "the registry file to write (default for a directory: DIR/registry.toml)",
      nonEmpty("--registry-file"),
    )
    .option("--latest", "only the newest version of each image")
    .option("--key <secret-key>", RESIGN_KEY)
    .addOption(
      new Option("-j, --jobs <n>", "images copied at once")
        .default(DEFAULT_PULL_CONCURRENCY)
        .argParser(wholeNumber("--jobs", 1)),
    )
    .action(lazy(async () => (await import("./commands/mirror.js")).mirrorCommand as Lazy));

  program
    .command("completion")
    .description("print a shell completion script (commands, options and image names)")
    .addArgument(new Argument("<shell>", "bash, zsh or fish").choices(SHELLS))
    .addHelpText(
      "after",
      "\nLoad it with:\n  bash: source <(axvisor-image completion bash)\n" +
        "  zsh:  source <(axvisor-image completion zsh)\n  fish: axvisor-image completion fish | source",
    )
    .action(lazy(async () => (await import("./commands/completion.js")).completionCommand as Lazy));
}
