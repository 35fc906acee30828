#!/bin/sh
# build.sh rebuilds every .wasm of the security suite from its .wat with wat2wasm (wabt).
#
#   ./build.sh           rebuild in place
#   ./build.sh --check   rebuild into a temp dir; exit 1 if any committed .wasm differs
#
# A .wat may name extra wat2wasm flags on a line of its own: ";; wat2wasm-flags: --enable-threads".
# Malformed and oversized modules are generated in Go at test time (attack_modules_test.go).
# wat2wasm is deterministic for a given wabt version; no debug names are emitted.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
mode=build
case "${1:-}" in
  "") ;;
  --check) mode=check ;;
  *) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac

command -v wat2wasm >/dev/null 2>&1 || { echo "build.sh: wat2wasm (wabt) not found" >&2; exit 2; }

out="$here"
if [ "$mode" = check ]; then
  out=$(mktemp -d)
  trap 'rm -rf "$out"' EXIT
fi

status=0
for wat in "$here"/*.wat; do
  name=$(basename "$wat" .wat)
  flags=$(sed -n 's/^;; wat2wasm-flags: *//p' "$wat")
  # shellcheck disable=SC2086 # flags are meant to split into words
  wat2wasm $flags "$wat" -o "$out/$name.wasm"
  if [ "$mode" = check ] && ! cmp -s "$out/$name.wasm" "$here/$name.wasm"; then
    echo "build.sh: $name.wasm is stale or missing; run ./build.sh" >&2
    status=1
  fi
done
exit $status
