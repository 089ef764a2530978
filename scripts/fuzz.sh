#!/usr/bin/env bash
# Runs every Go fuzz target of the module for FUZZTIME each (default 20s).
# New failing inputs land in the package's testdata/fuzz directory.
set -euo pipefail
cd "$(dirname "$0")/.."
FUZZTIME="${FUZZTIME:-20s}"
GO="${GO:-go}"

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
		echo "== $dir $target ($FUZZTIME)"
		ran=$((ran + 1))
		if ! "$GO" test -run '^$' -fuzz "^${target}\$" -fuzztime "$FUZZTIME" "$dir"; then
			echo "FAIL: $dir $target" >&2
			status=1
		fi
	done
done
echo "fuzzed $ran targets"
exit "$status"
