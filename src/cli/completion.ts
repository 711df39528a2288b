/**
 * `funcx-endpoint completion [bash|zsh]`: print a shell completion script generated from
 * the commands of this program: every command's subcommands and options, the values of
 * arguments with fixed choices, endpoint names from the funcX home (`-c DIR`, `$FUNCX_HOME`
 * or `~/.funcx`) and directories after `--config-dir`.
 *
 * Both scripts share one candidate function written in the common subset of bash and zsh;
 * only the glue to each shell's completion system differs.
 *
 * @example
 * ```sh
 * source <(funcx-endpoint completion bash)
 * source <(funcx-endpoint completion zsh)
 * ```
 * @module
 */
import { Argument, type Command } from "@commander-js/extra-typings";
import { CliError, PROGRAM } from "./context.ts";
import type { CliContext } from "./context.ts";

/** What completes at one command path. */
export interface CompletionNode {
  /** Words from the program to this command ("" for the program, "service start"). */
  path: string;
  /** Visible subcommands. */
  subcommands: string[];
  /** Visible option flags, long and short. */
  options: string[];
  /** The flags of those that take a value. */
  valueOptions: string[];
  /** Each positional argument: `names` (endpoint names), `choices:a b`, or `` (nothing). */
  args: string[];
}

interface _Opt {
  long?: string;
  short?: string;
  hidden?: boolean;
  required?: boolean;
  optional?: boolean;
}

interface _Arg {
  description: string;
  argChoices?: string[];
  completionChoices?: string[];
}

function _node(cmd: Command, path: string): CompletionNode {
  // deno-lint-ignore no-explicit-any
  const c = cmd as any;
  const opts = (c.options as _Opt[]).filter((o) => !o.hidden);
  const flags = (o: _Opt) => [o.long, o.short].filter((x): x is string => !!x);
  const help = path === "" ? ["--help", "-h"] : ["--help"];
  return {
    path,
    subcommands: (c.commands as Command[])
      // deno-lint-ignore no-explicit-any
      .filter((s) => !(s as any)._hidden && s.name() !== "help")
      .map((s) => s.name()),
    options: [...opts.flatMap(flags), ...help],
    valueOptions: opts.filter((o) => o.required || o.optional).flatMap(flags),
    args: ((c.registeredArguments ?? []) as _Arg[]).map((a) => {
      const choices = a.argChoices ?? a.completionChoices;
      if (choices) return `choices:${choices.join(" ")}`;
      return /endpoint name/.test(a.description) ? "names" : "";
    }),
  };
}

/**
 * Every command path of `program` with what completes there.
 *
 * @example
 * ```ts ignore
 * completionTree(program).find((n) => n.path === "service")!.subcommands; // ["start", ...]
 * ```
 */
export function completionTree(program: Command): CompletionNode[] {
  const out: CompletionNode[] = [];
  const walk = (cmd: Command, path: string) => {
    out.push(_node(cmd, path));
    // deno-lint-ignore no-explicit-any
    for (const s of (cmd as any).commands as Command[]) {
      // deno-lint-ignore no-explicit-any
      if ((s as any)._hidden || s.name() === "help") continue;
      walk(s, path ? `${path} ${s.name()}` : s.name());
    }
  };
  walk(program, "");
  return out;
}

/** The candidate function shared by both shells (bash and zsh with `shwordsplit`). */
function _core(tree: CompletionNode[]): string {
  const cases = tree.map((n) =>
    `    "${n.path}") subs="${n.subcommands.join(" ")}"; opts="${n.options.join(" ")}"; ` +
    `valopts="${n.valueOptions.join(" ")}"; args="${n.args.join("|")}" ;;`
  ).join("\n");
  return `# ${PROGRAM} completion: the words after the program name up to the cursor are the
# arguments; the word being completed comes first. Prints candidates, one a line
# (__dirs__ asks the shell for directories).
_funcx_endpoint_spec() {
  subs=""; opts=""; valopts=""; args=""
  case "$1" in
${cases}
  esac
}
_funcx_endpoint_candidates() {
  [ -n "$ZSH_VERSION" ] && setopt localoptions shwordsplit nullglob
  local IFS=" " cur="$1" cmdpath="" home="\${FUNCX_HOME:-$HOME/.funcx}" npos=0 skip="" w
  local subs opts valopts args prev=""
  shift
  _funcx_endpoint_spec ""
  for w in "$@"; do
    if [ -n "$skip" ]; then
      [ "$prev" = "-c" ] || [ "$prev" = "--config-dir" ] && home="$w"
      skip=""; prev="$w"; continue
    fi
    prev="$w"
    case "$w" in
      --*=*) ;;
      -*) case " $valopts " in *" $w "*) skip=1 ;; esac ;;
      *)
        case " $subs " in
          *" $w "*) cmdpath="\${cmdpath:+$cmdpath }$w"; npos=0; _funcx_endpoint_spec "$cmdpath" ;;
          *) npos=$((npos + 1)) ;;
        esac ;;
    esac
  done
  case "$home" in "~/"*) home="$HOME/\${home#\\~/}" ;; esac
  if [ -n "$skip" ]; then
    case "$prev" in -c|--config-dir) echo __dirs__ ;; esac
    return 0
  fi
  case "$cur" in
    -*) printf '%s\\n' $opts; return 0 ;;
  esac
  if [ -n "$subs" ]; then printf '%s\\n' $subs; return 0; fi
  local i=0 a kind=""
  IFS="|"
  for a in $args; do
    [ "$i" = "$npos" ] && kind="$a"
    i=$((i + 1))
  done
  IFS=" "
  case "$kind" in
    names)
      local d
      for d in "$home"/*/config.yaml; do
        [ -e "$d" ] && d="\${d%/config.yaml}" && echo "\${d##*/}"
      done ;;
    choices:*) printf '%s\\n' \${kind#choices:} ;;
  esac
  return 0
}
`;
}

/**
 * The bash completion script.
 *
 * @example
 * ```ts ignore
 * bashCompletion(program).includes("complete -F"); // true
 * ```
 */
export function bashCompletion(program: Command): string {
  return `# bash completion for ${PROGRAM}; load with: source <(${PROGRAM} completion bash)
${_core(completionTree(program))}
_funcx_endpoint() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" IFS=$'\\n' c
  c=$(_funcx_endpoint_candidates "$cur" "\${COMP_WORDS[@]:1:COMP_CWORD-1}")
  if [ "$c" = __dirs__ ]; then
    COMPREPLY=($(compgen -d -- "$cur"))
  else
    COMPREPLY=($(compgen -W "$c" -- "$cur"))
  fi
}
complete -F _funcx_endpoint ${PROGRAM}
`;
}

/**
 * The zsh completion script (zsh's own completion system, `compinit` loaded if needed).
 *
 * @example
 * ```ts ignore
 * zshCompletion(program).startsWith("#compdef funcx-endpoint"); // true
 * ```
 */
export function zshCompletion(program: Command): string {
  return `#compdef ${PROGRAM}
# zsh completion for ${PROGRAM}; load with: source <(${PROGRAM} completion zsh)
${_core(completionTree(program))}
_funcx_endpoint() {
  local -a c
  c=("\${(@f)$(_funcx_endpoint_candidates "\${words[CURRENT]}" "\${(@)words[2,CURRENT-1]}")}")
  if [[ "\${c[1]}" == __dirs__ ]]; then
    _files -/
  else
    compadd -- \${c:#}
  fi
}
if ! (( $+functions[compdef] )); then
  autoload -Uz compinit && compinit
fi
compdef _funcx_endpoint ${PROGRAM}
`;
}

/**
 * Add the `completion` command (register it last: it lists the other commands).
 *
 * @example
 * ```ts ignore
 * register(program, ctx);
 * ```
 */
export function register(program: Command, _ctx: CliContext) {
  program
    .command("completion")
    .description(`print a shell completion script: source <(${PROGRAM} completion bash)`)
    // choices for completion only: the action's own error message names what is valid
    .addArgument(
      Object.assign(new Argument("[shell]", "bash or zsh").default("bash"), {
        completionChoices: ["bash", "zsh"],
      }),
    )
    .action((shell) => {
      if (shell !== "bash" && shell !== "zsh") {
        throw new CliError(`completion: "${shell}" is not supported; expected bash or zsh`);
      }
      console.log(shell === "zsh" ? zshCompletion(program) : bashCompletion(program));
    });
}
