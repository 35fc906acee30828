#!/usr/bin/env bash
# Runs every fuzz target for a bounded time each (make fuzz: short, in CI; make fuzz-long).
# A target is a package and a Fuzz function; go test -fuzz takes one at a time.
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime=${1:-3000x} # a count: see FUZZTIME in the Makefile
targets=$(grep -rl --include='*_test.go' '^func Fuzz' . | xargs -n1 dirname | sort -u)
for pkg in $targets; do
  for fn in $(grep -h '^func Fuzz' "$pkg"/*_test.go | sed -E 's/^func (Fuzz[A-Za-z0-9_]*).*/\1/'); do
    echo "fuzz: $pkg $fn ($fuzztime)"
    CGO_ENABLED=${CGO_ENABLED:-0} go test -run '^$' -fuzz "^$fn\$" -fuzztime "$fuzztime" "$pkg"
  done
done
