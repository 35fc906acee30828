#!/bin/sh
# build-wat.sh rebuilds every .wasm in the test-module folders from its .wat with wat2wasm
# (wabt): testdata/modules and test/security/testdata, or the folders named.
#
#   scripts/build-wat.sh [DIR...]           rebuild in place
#   scripts/build-wat.sh --check [DIR...]   rebuild into a temp dir; exit 1 if any committed .wasm differs
#
# A .wat may name extra wat2wasm flags on a line of its own: ";; wat2wasm-flags: --enable-threads".
# .wasm files without a .wat (invalid.wasm) are test fixtures and are left alone; malformed
# and oversized modules of the security suite are generated in Go at test time.
# wat2wasm is deterministic for a given wabt version; no debug names are emitted.
set -eu

mode=build
if [ "${1:-}" = --check ]; then
  mode=check
  shift
fi
root=$(cd "$(dirname "$0")/.." && pwd)
[ "$#" -gt 0 ] || set -- "$root/testdata/modules" "$root/test/security/testdata"

command -v wat2wasm >/dev/null 2>&1 || { echo "build-wat.sh: wat2wasm (wabt) not found" >&2; exit 2; }

status=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for here in "$@"; do
  out="$here"
  [ "$mode" = check ] && out="$tmp"
  for wat in "$here"/*.wat; do
    name=$(basename "$wat" .wat)
    flags=$(sed -n 's/^;; wat2wasm-flags: *//p' "$wat")
    # shellcheck disable=SC2086 # flags are meant to split into words
    wat2wasm $flags "$wat" -o "$out/$name.wasm"
    if [ "$mode" = check ] && ! cmp -s "$out/$name.wasm" "$here/$name.wasm"; then
      echo "build-wat.sh: $here/$name.wasm is stale or missing; run scripts/build-wat.sh" >&2
      status=1
    fi
  done
done
exit $status
