#!/usr/bin/env bash
# Fails when a generated file in the tree is stale: the example modules (deterministic Go
# builds for wasip1) and the embedded seccomp program (compiled with libseccomp). The test
# modules have their own check (scripts/build-wat.sh --check).
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
stale=0
for d in hello jsonagent; do
  GOOS=wasip1 GOARCH=wasm CGO_ENABLED=0 go build -trimpath -ldflags=-s -o "$tmp/$d.wasm" "./examples/$d"
  cmp -s "$tmp/$d.wasm" "examples/$d/$d.wasm" || { echo "stale: examples/$d/$d.wasm (run make generate)"; stale=1; }
done
CGO_ENABLED=1 go run ./seccomp/internal/gen -o "$tmp/filter.bpf" -noexec "$tmp/noexec.bpf" >/dev/null
arch=$(go env GOARCH)
cmp -s "$tmp/filter.bpf" "seccomp/filter_$arch.bpf" || { echo "stale: seccomp/filter_$arch.bpf (run make generate)"; stale=1; }
cmp -s "$tmp/noexec.bpf" "seccomp/noexec_$arch.bpf" || { echo "stale: seccomp/noexec_$arch.bpf (run make generate)"; stale=1; }
exit $stale
