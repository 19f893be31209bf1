/**
 * `completion bash|zsh|fish`: shell completion scripts generated from the commander program, so
 * that they follow its commands and options. Image names are completed by running the CLI itself
 * (`axvisor-image ls --names`, a hidden helper that reads the store's registry without syncing).
 */
import type { Command } from "commander";
import { listImages } from "../../ops/ls.js";
import { formatSpec } from "../../registry/resolve.js";
import { storeDirs } from "../../store/layout.js";
import { scanStore } from "../../store/scan.js";
import { readRegistryState } from "../../store/state.js";
import { commandContext, rootOf } from "../context.js";
import { SHELLS } from "../program.js";
import { displayText, result } from "../output.js";

/** What a completion script needs to know about one command (or subcommand). */
interface CommandModel {
  /** `pull`, or `registry add` for a subcommand. */
  key: string;
  /** Its name and aliases (keys of a subcommand: the key alone). */
  keys: string[];
  /** Its name and aliases, as typed. */
  names: string[];
  description: string;
  options: OptionModel[];
  /** Subcommand names, for a command that has them. */
  subcommands: string[];
  /** What its arguments complete to (`stored`: the images in the store). */
  args: "images" | "stored" | "files" | "none" | string[];
}

interface OptionModel {
  short?: string;
  long?: string;
  /** Takes a value (completed as a file name). */
  value: boolean;
  description: string;
}

const flagsOf = (o: OptionModel) => [o.short, o.long].filter((f): f is string => f !== undefined);

function optionModels(command: Command): OptionModel[] {
  const options: OptionModel[] = command.options
    .filter((o) => !o.hidden)
    .map((o) => ({
      short: o.short,
      long: o.long,
      value: o.required || o.optional,
      description: o.description,
    }));
  options.push({ short: "-h", long: "--help", value: false, description: "show help" });
  return options;
}

/** Arguments completed with image names; those named like a file complete to file names. */
const IMAGE_ARGS = new Set(["image", "pattern"]);
/** Commands about images already in the store: their arguments complete to those. */
const STORED_COMMANDS = new Set(["rm", "path", "verify"]);
const FILE_ARG = /file|archive|registry|dir/;

function argsModel(command: Command): CommandModel["args"] {
  if (command.commands.length > 0) return command.commands.map((c) => c.name());
  const arg = command.registeredArguments[0];
  if (arg === undefined) return "none";
  if (arg.argChoices) return arg.argChoices;
  if (IMAGE_ARGS.has(arg.name())) return STORED_COMMANDS.has(command.name()) ? "stored" : "images";
  return FILE_ARG.test(arg.name()) ? "files" : "none";
}

/** Every visible command of `program`, subcommands included, in the order of `--help`. */
function commandModels(program: Command): CommandModel[] {
  const models: CommandModel[] = [];
  const visit = (command: Command, parent: string | undefined) => {
    const names = [command.name(), ...command.aliases()];
    const key = parent === undefined ? command.name() : `${parent} ${command.name()}`;
    models.push({
      key,
      keys: parent === undefined ? names : [key],
      names,
      description: command.description(),
      options: optionModels(command),
      subcommands: command.commands.map((c) => c.name()),
      args: argsModel(command),
    });
    for (const sub of command.commands) visit(sub, key);
  };
  for (const command of program.commands) {
    if (command.name() !== "help") visit(command, undefined);
  }
  return models;
}

/** Global options that choose the store: passed on to the `ls --names` the scripts run. */
const STORE_FLAGS = ["-S", "--local-storage", "-c", "--config"];

/** What every script is generated from. */
interface ScriptModel {
  commands: CommandModel[];
  global: OptionModel[];
  /** Flags (of any command) followed by a value. */
  valueFlags: string[];
}

function scriptModel(program: Command): ScriptModel {
  const commands = commandModels(program);
  const global = optionModels(program);
  const all = [...global, ...commands.flatMap((c) => c.options)];
  const valueFlags = [...new Set(all.filter((o) => o.value).flatMap(flagsOf))];
  return { commands, global, valueFlags };
}

const quoted = (text: string) => `'${text.replaceAll("'", "'\\''")}'`;
const joined = (list: string[]) => quoted(list.join(" "));

/**
 * The `case "$key"` statement both bash and zsh use: for the command (`key`) on the line, the
 * options to offer (`opts`), fixed words (`choices`) or what the arguments are (`kind`).
 */
function keyCases(model: ScriptModel, indent: string): string {
  const top = model.commands.filter((c) => !c.key.includes(" "));
  const lines = [
    `'') opts=${joined(model.global.flatMap(flagsOf))}; choices=${joined(top.flatMap((c) => c.names))} ;;`,
    ...model.commands.map((c) => {
      const args = Array.isArray(c.args) ? `choices=${joined(c.args)}` : `kind=${c.args}`;
      return `${c.keys.map(quoted).join("|")}) opts=${joined(c.options.flatMap(flagsOf))}; ${args} ;;`;
    }),
  ];
  return [`case "$key" in`, ...lines.map((l) => `  ${l}`), "esac"]
    .map((l) => indent + l)
    .join("\n");
}

/** `word` extends `key` when it is one of the key's subcommands (for bash and zsh). */
function subcommandTest(model: ScriptModel): string {
  const parents = model.commands.filter((c) => c.subcommands.length > 0);
  return parents
    .map((c) => `[[ "$key" == ${quoted(c.key)} && " ${c.subcommands.join(" ")} " == *" $word "* ]]`)
    .join(" || ");
}

function bashScript(model: ScriptModel): string {
  const values = model.valueFlags.join("|");
  return `# bash completion for axvisor-image (generated by \`axvisor-image completion bash\`).
# Load it with:  source <(axvisor-image completion bash)
_axvisor_image() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" prev="\${COMP_WORDS[COMP_CWORD-1]}"
  local key="" word i opts="" choices="" kind=none
  local -a store=()
  for ((i = 1; i < COMP_CWORD; i++)); do
    word="\${COMP_WORDS[i]}"
    case "$word" in
      ${STORE_FLAGS.join("|")}) store+=("$word" "\${COMP_WORDS[i+1]}"); ((i++)) ;;
      ${values}) ((i++)) ;;
      -*) ;;
      *) if [[ -z "$key" ]]; then key="$word"; elif ${subcommandTest(model)}; then key="$key $word"; fi ;;
    esac
  done
  case "$prev" in
    ${values}) compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -f -- "$cur")); return ;;
  esac
${keyCases(model, "  ")}
  if [[ "$cur" == -* ]]; then
    COMPREPLY=($(compgen -W "$opts" -- "$cur"))
  elif [[ -n "$choices" ]]; then
    COMPREPLY=($(compgen -W "$choices" -- "$cur"))
  elif [[ "$kind" == images || "$kind" == stored ]]; then
    # NAME:VERSION after a colon, which bash may have split the word at (COMP_WORDBREAKS).
    local helper=(--names) typed="$cur"
    [[ "$kind" == stored ]] && helper+=(--stored)
    [[ -n "\${COMP_LINE-}" ]] && typed="\${COMP_LINE:0:COMP_POINT}" && typed="\${typed##*[[:space:]]}"
    [[ "$typed" == *:* ]] && helper+=(--versions)
    COMPREPLY=($(compgen -W "$("\${COMP_WORDS[0]}" "\${store[@]}" ls "\${helper[@]}" 2>/dev/null)" -- "$typed"))
    if [[ "$typed" == *:* && "$COMP_WORDBREAKS" == *:* ]]; then
      local colon="\${typed%"\${typed##*:}"}"
      COMPREPLY=("\${COMPREPLY[@]#"$colon"}")
    fi
  elif [[ "$kind" == files ]]; then
    compopt -o filenames 2>/dev/null
    COMPREPLY=($(compgen -f -- "$cur"))
  fi
}
complete -F _axvisor_image axvisor-image
`;
}

function zshScript(model: ScriptModel): string {
  const values = model.valueFlags.join("|");
  return `#compdef axvisor-image
# zsh completion for axvisor-image (generated by \`axvisor-image completion zsh\`).
# Load it with:  source <(axvisor-image completion zsh)   (after compinit)
_axvisor_image() {
  local key="" word i opts="" choices="" kind=none
  local -a store
  for ((i = 2; i < CURRENT; i++)); do
    word="\${words[i]}"
    case "$word" in
      ${STORE_FLAGS.join("|")}) store+=("$word" "\${words[i+1]}"); ((i++)) ;;
      ${values}) ((i++)) ;;
      -*) ;;
      *) if [[ -z "$key" ]]; then key="$word"; elif ${subcommandTest(model)}; then key="$key $word"; fi ;;
    esac
  done
  case "\${words[CURRENT-1]}" in
    ${values}) _files; return ;;
  esac
${keyCases(model, "  ")}
  if [[ "\${words[CURRENT]}" == -* ]]; then
    compadd -- \${=opts}
  elif [[ -n "$choices" ]]; then
    compadd -- \${=choices}
  elif [[ "$kind" == images || "$kind" == stored ]]; then
    local -a helper=(--names)
    [[ "$kind" == stored ]] && helper+=(--stored)
    [[ "\${words[CURRENT]}" == *:* ]] && helper+=(--versions)
    compadd -- \${(f)"$("\${words[1]}" "\${store[@]}" ls "\${helper[@]}" 2>/dev/null)"}
  elif [[ "$kind" == files ]]; then
    _files
  fi
}
if [[ "\${funcstack[1]}" == _axvisor_image ]]; then
  _axvisor_image "$@"
else
  compdef _axvisor_image axvisor-image
fi
`;
}

function fishScript(model: ScriptModel): string {
  const complete = (condition: string, rest: string) =>
    `complete -c axvisor-image -n ${quoted(condition)} ${rest}`;
  const option = (condition: string, o: OptionModel) => {
    const short = o.short === undefined ? "" : `-s ${o.short.slice(1)} `;
    const long = o.long === undefined ? "" : `-l ${o.long.slice(2)} `;
    return complete(
      condition,
      `${short}${long}${o.value ? "-r -F " : ""}-d ${quoted(o.description)}`,
    );
  };
  const lines: string[] = [];
  for (const o of model.global) lines.push(option("__axvisor_image_is ''", o));
  for (const c of model.commands.filter((m) => !m.key.includes(" "))) {
    lines.push(complete("__axvisor_image_is ''", `-a ${c.names[0]} -d ${quoted(c.description)}`));
  }
  for (const c of model.commands) {
    const is = `__axvisor_image_is ${c.keys.map(quoted).join(" ")}`;
    for (const o of c.options) lines.push(option(is, o));
    if (c.args === "images" || c.args === "stored") {
      const stored = c.args === "stored" ? " --stored" : "";
      lines.push(complete(is, `-a '(__axvisor_image_images${stored})'`));
    } else if (c.args === "files") lines.push(complete(is, "-F"));
    else if (Array.isArray(c.args)) {
      for (const sub of c.args) {
        const description = model.commands.find((m) => m.key === `${c.key} ${sub}`)?.description;
        lines.push(
          complete(is, `-a ${quoted(sub)}${description ? ` -d ${quoted(description)}` : ""}`),
        );
      }
    }
  }
  const parents = model.commands.filter((c) => c.subcommands.length > 0);
  return `# fish completion for axvisor-image (generated by \`axvisor-image completion fish\`).
# Load it with:  axvisor-image completion fish | source
function __axvisor_image_key --description 'the command (and subcommand) on the line so far'
    set -l tokens (commandline -opc)
    set -l key ''
    set -l skip 0
    for token in $tokens[2..-1]
        if test $skip = 1
            set skip 0
            continue
        end
        switch $token
            case ${model.valueFlags.join(" ")}
                set skip 1
            case '-*'
            case '*'
                if test -z "$key"
                    set key $token
${parents
  .map(
    (
      c,
    ) => `                else if test "$key" = ${quoted(c.key)}; and contains -- $token ${c.subcommands.join(" ")}
                    set key "$key $token"`,
  )
  .join("\n")}
                end
        end
    end
    echo $key
end
function __axvisor_image_is --description 'the command on the line is one of the arguments'
    contains -- (__axvisor_image_key) $argv
end
function __axvisor_image_images --description 'image names (NAME:VERSION after a colon) from the store registry'
    set -l tokens (commandline -opc)
    set -l store
    set -l helper --names $argv
    if string match -q -- '*:*' (commandline -ct)
        set -a helper --versions
    end
    for i in (seq 2 (count $tokens))
        if contains -- $tokens[$i] ${STORE_FLAGS.join(" ")}
            set -a store $tokens[$i] $tokens[(math $i + 1)]
        end
    end
    $tokens[1] $store ls $helper 2>/dev/null
end
complete -c axvisor-image -f
${lines.join("\n")}
`;
}

/** The completion script for `shell`, generated from `program`. */
function completionScript(program: Command, shell: (typeof SHELLS)[number]): string {
  const model = scriptModel(program);
  if (shell === "bash") return bashScript(model);
  if (shell === "zsh") return zshScript(model);
  return fishScript(model);
}

/** `completion bash|zsh|fish`: prints the script. */
export async function completionCommand(
  shell: (typeof SHELLS)[number],
  _options: unknown,
  command: Command,
): Promise<void> {
  process.stdout.write(displayText(completionScript(rootOf(command), shell)));
}

/**
 * `ls --names [PATTERN]` (hidden, for the completion scripts): the image names of the store's
 * registry, one per line, without syncing or any network access; nothing when there is none.
 * With `versions`, `NAME:VERSION` lines; with `stored`, only the images the store holds.
 */
export async function printImageNames(
  pattern: string | undefined,
  options: { versions?: boolean; stored?: boolean },
  command: Command,
): Promise<void> {
  const ctx = await commandContext(command);
  const state = await readRegistryState(ctx.config.localStorage);
  if (state.kind !== "ok") return;
  let entries = listImages(state.images, { pattern, verbose: true }).map((row) => row.entry);
  if (options.stored) {
    const dirs = storeDirs(ctx.config.localStorage, ctx.config.extractDir);
    const { copies } = await scanStore(dirs, state.images);
    const held = new Set(copies.map((c) => c.entry && formatSpec(c.entry)));
    entries = entries.filter((e) => held.has(formatSpec(e)));
  }
  const lines = entries.map((e) => (options.versions ? formatSpec(e) : e.name));
  result(...new Set(lines));
}
