/**
 * `funcx-endpoint completion [bash|zsh]`: print a shell completion script for the
 * commands and options of this program, completing endpoint names from the funcX home.
 *
 * @example
 * ```sh
 * source <(funcx-endpoint completion bash)
 * ```
 * @module
 */
import type { Command } from "@commander-js/extra-typings";
import { CliError } from "./context.ts";
import type { CliContext } from "./context.ts";

interface _Cmd {
  name: string;
  options: string[];
  hidden: boolean;
}

function _describe(program: Command): _Cmd[] {
  // deno-lint-ignore no-explicit-any
  return (program.commands as any[]).map((c) => ({
    name: c.name() as string,
    options: (c.options as { long?: string; short?: string }[])
      .filter((o) => !(o as { hidden?: boolean }).hidden)
      .flatMap((o) => [o.long, o.short].filter((x): x is string => !!x)).concat(["--help"]),
    hidden: !!(c as { _hidden?: boolean })._hidden,
  })).filter((c) => !c.hidden && c.name !== "help");
}

/**
 * The bash completion script (also works in zsh with `bashcompinit`).
 *
 * @example
 * ```ts
 * bashCompletion(program).includes("complete -F"); // true
 * ```
 */
export function bashCompletion(program: Command): string {
  const cmds = _describe(program);
  const globals = ["--version", "--debug", "--config-dir", "--help"];
  const cases = cmds.map((c) => `    ${c.name}) opts="${c.options.join(" ")}" ;;`).join("\n");
  return `# bash completion for funcx-endpoint; load with: source <(funcx-endpoint completion bash)
_funcx_endpoint() {
  local cur cmd="" home="\${FUNCX_HOME:-$HOME/.funcx}" i opts=""
  cur="\${COMP_WORDS[COMP_CWORD]}"
  for ((i = 1; i < COMP_CWORD; i++)); do
    case "\${COMP_WORDS[i]}" in
      -c|--config-dir) home="\${COMP_WORDS[i+1]}"; i=$((i + 1)) ;;
      -*) ;;
      *) cmd="\${COMP_WORDS[i]}"; break ;;
    esac
  done
  if [ -z "$cmd" ]; then
    COMPREPLY=($(compgen -W "${cmds.map((c) => c.name).join(" ")} ${globals.join(" ")}" -- "$cur"))
    return
  fi
  case "$cmd" in
${cases}
  esac
  if [[ "$cur" == -* ]]; then
    COMPREPLY=($(compgen -W "$opts" -- "$cur"))
  else
    local names="" d
    for d in "$home"/*/config.yaml; do [ -e "$d" ] && names="$names $(basename "$(dirname "$d")")"; done
    COMPREPLY=($(compgen -W "$names" -- "$cur"))
  fi
}
complete -F _funcx_endpoint funcx-endpoint
`;
}

/**
 * Add the `completion` command (register it last: it lists the other commands).
 *
 * @example
 * ```ts
 * register(program, ctx);
 * ```
 */
export function register(program: Command, _ctx: CliContext) {
  program
    .command("completion")
    .description("print a shell completion script: source <(funcx-endpoint completion bash)")
    .argument("[shell]", "bash or zsh", "bash")
    .action((shell) => {
      if (shell !== "bash" && shell !== "zsh") {
        throw new CliError(`completion: "${shell}" is not supported; expected bash or zsh`);
      }
      const script = bashCompletion(program);
      console.log(
        shell === "zsh" ? `autoload -U +X bashcompinit && bashcompinit\n${script}` : script,
      );
    });
}
