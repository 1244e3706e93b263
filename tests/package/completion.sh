#!/usr/bin/env bash
# packaging/virtcert.bash-completion completes the built virtcert's commands,
# sub-commands and options (read from its own --help):
#   completion.sh COMPLETION-FILE
set -euo pipefail
: "${VIRTCERT:?}"
[[ -f /usr/share/bash-completion/bash_completion ]] ||
	{ echo "SKIP: bash-completion missing (scripts/deps test installs it)"; exit 77; }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
ln -s "$VIRTCERT" "$dir/virtcert"
fails=0
# complete WORD...: what <TAB> offers after the words (the last is the one completed)
complete_words() {
	PATH=$dir:$PATH bash -c 'source /usr/share/bash-completion/bash_completion
		source "$1"; shift
		COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
		COMP_LINE="${COMP_WORDS[*]}"; COMP_POINT=${#COMP_LINE}
		_virtcert; printf "%s\n" "${COMPREPLY[@]}" | sort' completion "$1" "${@:2}"
}
expect() { # expect "WORDS" WANTED...: the completion offers exactly WANTED
	local words=$1 got want
	shift
	read -ra w <<<"$words"
	[[ "$words" == *" " ]] && w+=("")
	got=$(complete_words "$COMPLETION" "${w[@]}" | paste -sd' ')
	want=$(printf '%s\n' "$@" | sort | paste -sd' ')
	if [[ "$got" == "$want" ]]; then echo "ok - '$words' completes to: $got"; else
		echo "not ok - '$words' completes to '$got', wanted '$want'"; fails=$((fails + 1)); fi
}
COMPLETION=$1
# the first words of every command in `virtcert --help`
top=$("$VIRTCERT" --help | awk '/^Commands:/ { l = 1; next } l && /^  [a-z]/ { print $1 }' | sort -u)
((${#top} > 0)) || { echo "not ok - virtcert --help lists no command"; exit 1; }
# shellcheck disable=SC2086
expect "virtcert " $top
expect "virtcert ca " init import show
expect "virtcert ca init --p" --permit --public-url
expect "virtcert revoke 0 --reason su" superseded
expect "virtcert --config x st" status
((fails == 0))
