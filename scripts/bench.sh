#!/usr/bin/env bash
# make bench: end-to-end `agentbox run` (start to verdict) against a plain fork/exec of the
# same binary, interleaved in one run so the ratio survives a noisy clock; then wazero's own
# costs. Writes bench-report.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
out=bench-report.txt
{
  echo "# agentbox bench report — $(date -u +%Y-%m-%dT%H:%M:%SZ), Linux $(uname -r), $(nproc) cores"
  echo "## agentbox run vs fork/exec of the same binary (agentbox version): p50/p99 and ratios"
  go test -run '^$' -bench 'RunHelloWAT|RunHelloGoCached' -benchtime 200x ./test/bench/
  go test -run '^$' -bench 'RunHelloGoUncached' -benchtime 10x ./test/bench/
  echo "## agentboxd: submit→verdict and submit→guest start of the hello module, against agentbox run, interleaved"
  go test -run '^$' -bench 'DaemonSubmitToVerdict' -benchtime 200x ./test/bench/
  echo "## agentboxd's metrics: the hot path and one scrape"
  go test -run '^$' -bench . -benchmem ./supervisor/metrics/
  echo "## wasm: a 1e8-iteration loop with and without WithCloseOnContextDone; hello compile+run"
  go test -run '^$' -bench . -benchtime 3x ./wasm/
  echo "## seccomp: compiling the policy (once per build; the binary embeds the result)"
  CGO_ENABLED=1 go test -run '^$' -bench . -benchtime 20x ./seccomp/
} 2>&1 | tee "$out"
echo "report written to $out"
