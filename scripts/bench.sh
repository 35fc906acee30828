#!/usr/bin/env bash
# make bench: end-to-end run-vs-fork/exec figures and wazero's own costs, one report.
set -euo pipefail
cd "$(dirname "$0")/.."
out=bench-report.txt
{
  echo "# agentbox bench report — $(date -u +%Y-%m-%dT%H:%M:%SZ), $(uname -r), $(nproc) cores"
  echo "## agentbox run (start to verdict) vs plain fork/exec of the same binary"
  go test -run '^$' -bench . -benchtime 100x ./test/bench/
  echo "## wasm: loop cost with and without WithCloseOnContextDone; hello compile+run"
  go test -run '^$' -bench . -benchtime 3x ./wasm/
} 2>&1 | tee "$out"
echo "report written to $out"
