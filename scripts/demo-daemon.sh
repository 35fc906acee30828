#!/usr/bin/env bash
# The daemon half of make demo: agentboxd on a temporary socket and state dir, the example
# agents submitted through the CLI, their verdicts and a few metric lines, then a clean stop
# (SIGTERM). Needs root (the sandbox) and bin/ built by make build.
set -euo pipefail
cd "$(dirname "$0")/.."

dir=$(mktemp -d /tmp/agentbox-demo.XXXXXX)
sock="$dir/agentboxd.sock"
./bin/agentboxd --state-dir "$dir/state" --socket "$sock" >"$dir/agentboxd.log" 2>&1 &
pid=$!
stop() {
  kill -TERM "$pid" 2>/dev/null && wait "$pid" || true
  rm -rf "$dir"
}
trap stop EXIT

# Ready means JetStream answers and the sandbox ran a trivial module for real.
for _ in $(seq 1 600); do
  if curl -sf --unix-socket "$sock" http://agentboxd/readyz >/dev/null 2>&1; then break; fi
  if ! kill -0 "$pid" 2>/dev/null; then cat "$dir/agentboxd.log" >&2; exit 1; fi
  sleep 0.1
done
curl -sf --unix-socket "$sock" http://agentboxd/readyz >/dev/null || { echo "agentboxd not ready:" >&2; cat "$dir/agentboxd.log" >&2; exit 1; }

export AGENTBOX_HOST="unix://$sock"
echo "== agentboxd is up on $sock (state in $dir)"
echo '== agentbox submit --wait examples/hello/hello.wasm -- alice bob'
./bin/agentbox submit --wait examples/hello/hello.wasm -- alice bob
echo '== agentbox submit --wait --json --memory 128Mi --stdin examples/jsonagent/task.json examples/jsonagent/jsonagent.wasm'
./bin/agentbox submit --wait --json --memory 128Mi --stdin examples/jsonagent/task.json examples/jsonagent/jsonagent.wasm
echo '== agentbox ls'
./bin/agentbox ls
echo '== a few metric lines (GET /metrics)'
curl -sf --unix-socket "$sock" http://agentboxd/metrics |
  grep -E '^agentbox_(tasks_total|attempts_total|slots|memory_budget_bytes|jetstream_up)' | grep -v ' 0$'
echo '== stopping agentboxd (SIGTERM)'
