# bash completion for outboxctl
_outboxctl() {
  local cur prev words cword
  _init_completion || return
  local commands="ping enqueue get list stats retry purge pause resume metrics"
  local cmd="" i
  for ((i = 1; i < cword; i++)); do
    case "${words[i]}" in
      -s|--socket) ((i++)) ;;
      -*) ;;
      *) cmd="${words[i]}"; break ;;
    esac
  done
  case "$prev" in
    -s|--socket) _filedir; return ;;
    --state) COMPREPLY=($(compgen -W "pending inflight delivered dead" -- "$cur")); return ;;
  esac
  if [ -z "$cmd" ]; then
    COMPREPLY=($(compgen -W "$commands -s --socket --json --help" -- "$cur"))
    return
  fi
  case "$cmd" in
    list) COMPREPLY=($(compgen -W "--state --provider --limit --after --ids --help" -- "$cur")) ;;
    retry|purge) COMPREPLY=($(compgen -W "--ids --provider --state --help" -- "$cur")) ;;
    enqueue) COMPREPLY=($(compgen -W "--key --help -" -- "$cur")) ;;
    *) COMPREPLY=($(compgen -W "--help" -- "$cur")) ;;
  esac
}
complete -F _outboxctl outboxctl
