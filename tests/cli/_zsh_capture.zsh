# Complete one command line in a real interactive zsh (in a pseudo-terminal, via zpty) and
# print what the completion system offered: <<candidate candidate ...>> for each compadd call.
# usage: zsh -f _zsh_capture.zsh SCRIPT 'command line to complete'
zmodload zsh/zpty
zpty z zsh -f -i
zpty -w z 'PROMPT= RPROMPT= ; unsetopt zle_bracketed_paste beep; autoload -Uz compinit; compinit -u -D'
zpty -w z "source ${(q)1}"
zpty -w z 'compadd() { local -a a; builtin compadd -O a "$@"; print -r -- "<<${(j: :)a}>>"; builtin compadd "$@" }'
zpty -w z 'zstyle ":completion:*" list-lines 0; zstyle ":completion:*" menu no'
zpty -w z 'print READY'
zpty -r z line '*READY*'
zpty -w -n z "$2"$'\t'
out=""
deadline=$(( SECONDS + 10 ))
while (( SECONDS < deadline )); do
  if zpty -r -t z l; then out+=$l; else sleep 0.05; fi
  [[ $out == *'>>'* ]] && break
done
# more compadd calls may follow the first: read until 0.5 s pass without output
quiet=0
while (( quiet < 10 && SECONDS < deadline + 5 )); do
  if zpty -r -t z l; then out+=$l; quiet=0; else sleep 0.05; (( quiet++ )); fi
done
print -r -- "$out"
zpty -d z
