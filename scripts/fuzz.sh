#!/usr/bin/env bash
# Runs every Go fuzz target of the module for FUZZTIME each (default 20s).
# New failing inputs land in the package's testdata/fuzz directory.
#
#   FUZZTIME             how long each target runs (go test -fuzztime)
#   FUZZMINIMIZETIME     bound on minimizing a new input (default 5s; Go's
#                        default of 60s looks like a hang on MP4 inputs)
#   FUZZPARALLEL         fuzzing workers per target (default: GOMAXPROCS)
#   FUZZTARGETS          a regular expression: only the targets it matches
#                        (matched against "<dir> <target>")
#
# The last line of each target's run (its execs) is kept in
# FUZZLOG (default: fuzz.log) as "<dir> <target> <line>".
set -euo pipefail
cd "$(dirname "$0")/.."
FUZZTIME="${FUZZTIME:-20s}"
FUZZMINIMIZETIME="${FUZZMINIMIZETIME:-5s}"
FUZZTARGETS="${FUZZTARGETS:-.}"
FUZZLOG="${FUZZLOG:-fuzz.log}"
GO="${GO:-go}"
par=()
if [ -n "${FUZZPARALLEL:-}" ]; then
	par=(-parallel "$FUZZPARALLEL")
fi

# Packages whose tests declare a fuzz target.
mapfile -t dirs < <(grep -rl --include='*_test.go' -E '^func Fuzz[A-Za-z0-9_]*\(' . |
	xargs -r -n1 dirname | sort -u)
if ((${#dirs[@]} == 0)); then
	echo "no fuzz targets found"
	exit 0
fi

status=0
ran=0
for dir in "${dirs[@]}"; do
	mapfile -t targets < <("$GO" test -list '^Fuzz' "$dir" | grep '^Fuzz' || true)
	for target in "${targets[@]}"; do
		if ! grep -Eq -- "$FUZZTARGETS" <<<"$dir $target"; then
			continue
		fi
		echo "== $dir $target ($FUZZTIME)"
		ran=$((ran + 1))
		out=$(mktemp)
		if ! "$GO" test -run '^$' -fuzz "^${target}\$" -fuzztime "$FUZZTIME" \
			-fuzzminimizetime "$FUZZMINIMIZETIME" "${par[@]}" "$dir" 2>&1 | tee "$out"; then
			echo "FAIL: $dir $target" >&2
			status=1
		fi
		last=$(grep -E 'fuzz: elapsed' "$out" | tail -1 || true)
		echo "$dir $target ${last:-no progress line}" >>"$FUZZLOG"
		rm -f "$out"
	done
done
echo "fuzzed $ran targets"
exit "$status"
