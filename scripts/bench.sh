#!/usr/bin/env bash
# make bench: the benchmark suite of issue 9, then its report. End to end (test/bench, as
# root): `agentbox run` against its baselines (fork/exec, bare wazero, bubblewrap, crun),
# the daemon's submit→start and submit→verdict, throughput, concurrent launches, memory per
# live agent and guest compute, each beside its baselines in the same benchmark; then every
# package benchmark (sandbox wire, scheduler, queue, retries, serialization, metrics, wasm, seccomp).
# Writes bench/bench-output.txt (the go test output), bench/samples.jsonl (every raw
# sample), and from them bench/REPORT.md and bench/latency.png (test/bench/report), with a
# perf profile of cold runs.
# About 6 minutes on the 2-core development VM; it loads the machine, so run it alone.
set -uo pipefail
cd "$(dirname "$0")/.."
mkdir -p bench
out=bench/bench-output.txt
export AGENTBOX_BENCH_SAMPLES="$PWD/bench/samples.jsonl"
rm -f "$AGENTBOX_BENCH_SAMPLES"

# A failed benchmark does not stop the others: its FAIL line lands in the output, the
# report lists it, and the script exits 1 at the end.
bench() { "$@" || echo "FAIL: $*"; }
e2e() { bench go test -run '^$' -benchmem -timeout 30m "$@" ./test/bench/; }

{
  echo "# make bench: $(date -u '+%Y-%m-%d %H:%M UTC'), Linux $(uname -r), $(nproc) cores"
  e2e -bench '^BenchmarkAgentSpawnLatency$' -benchtime 200x
  e2e -bench '^BenchmarkRunHelloGoCached$' -benchtime 100x
  e2e -bench '^BenchmarkRunHelloGoUncached$' -benchtime 10x
  e2e -bench '^BenchmarkGuestCompute$' -benchtime 20x
  e2e -bench '^BenchmarkDaemonSubmitToVerdict$' -benchtime 200x
  e2e -bench '^BenchmarkDaemonHotGoModule$' -benchtime 50x
  e2e -bench '^BenchmarkTaskThroughput$' -benchtime 5x
  e2e -bench '^BenchmarkConcurrentScaling$/^(1|2|8|32|100)$' -benchtime 3x
  # One round of 1,000: it alone takes about a minute.
  e2e -bench '^BenchmarkConcurrentScaling$/^1000$' -benchtime 1x
  # And with a warm pool as large as the burst (about 30 s more to fill it first).
  e2e -bench '^BenchmarkConcurrentScaling$/^1000-warm-pool$' -benchtime 1x
  e2e -bench '^BenchmarkMemoryPerAgent$' -benchtime 2x
  # -p 1: one package's benchmarks at a time, none beside another's on the 2 cores.
  bench go test -p 1 -run '^$' -bench . -benchmem ./sandbox/ ./supervisor/ ./supervisor/sched/ ./supervisor/store/ ./supervisor/task/ ./supervisor/metrics/
  bench go test -run '^$' -bench . -benchmem -benchtime 3x ./wasm/
  # The policy compiler needs libseccomp (cgo).
  CGO_ENABLED=1 bench go test -run '^$' -bench . -benchmem -benchtime 20x ./seccomp/
  echo "# load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
} 2>&1 | tee "$out"

# daemon_profile DIR: the daemon's profile into DIR/profile.txt; sets daemon_rusage_ms (its
# CPU per task over the window, from /proc/PID/stat) and daemon_wall_s.
daemon_profile() {
  local dir=$1 host digest i t0 t1 c0 c1 ok=1 ready=0
  mkdir -p "$dir" && mkfifo "$dir/ctl" "$dir/ack" || return 1
  host="unix://$dir/agentboxd.sock"
  bin/agentboxd --state-dir "$dir/state" --socket "$dir/agentboxd.sock" --cache-dir "$dir/cache" \
    --slots "$daemon_slots" --memory-budget "$((daemon_slots * 64))Mi" --grace 1s >"$dir/agentboxd.log" 2>&1 &
  daemon_pid=$!
  for _ in $(seq 600); do
    kill -0 "$daemon_pid" 2>/dev/null || break
    bin/agentbox ls --host "$host" >/dev/null 2>&1 && ready=1 && break
    sleep 0.1
  done
  if [ "$ready" != 1 ]; then
    echo "agentboxd did not become ready: $(tail -3 "$dir/agentboxd.log")" >&2
    stop_profiled
    return 1
  fi
  digest=$(bin/agentbox module push --host "$host" "$hello" | awk 'length($1) == 64 {print $1}')
  for i in $(seq "$daemon_tasks"); do
    printf '{"module":"%s","limits":{"memory":"64Mi"}}\n' "$digest"
  done >"$dir/batch.jsonl"
  # The warm-up: the module's compile and first cache read, and its hot child.
  for _ in 1 2 3; do bin/agentbox submit --host "$host" --wait --memory 64Mi "$digest" >/dev/null || ok=0; done
  perf record -q -D -1 --control "fifo:$dir/ctl,$dir/ack" -e cpu-clock -c 250000 -g -p "$daemon_pid" \
    -o "$dir/perf.data" >"$dir/perf.log" 2>&1 &
  perf_pid=$!
  # Read-write opens of the fifos do not wait for perf to open its ends (a perf that failed
  # to start would leave a plain open blocked); the reads of its acks time out instead.
  exec 8<>"$dir/ctl" 9<>"$dir/ack"
  cpu_ticks() { awk '{print $14 + $15 + $16 + $17}' "/proc/$daemon_pid/stat"; }
  echo enable >&8 && read -r -t 60 _ <&9 || ok=0
  c0=$(cpu_ticks) t0=$(date +%s.%N)
  [ "$ok" = 1 ] && { bin/agentbox submit --host "$host" --wait --batch "$dir/batch.jsonl" >/dev/null || ok=0; }
  t1=$(date +%s.%N) c1=$(cpu_ticks)
  echo disable >&8 && read -r -t 60 _ <&9 || ok=0
  exec 8>&- 9<&-
  stop_profiled
  daemon_rusage_ms=$(awk -v c="$((c1 - c0))" -v hz="$(getconf CLK_TCK)" -v n="$daemon_tasks" 'BEGIN {printf "%.2f", c * 1000 / hz / n}')
  daemon_wall_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", b - a}')
  [ "$ok" = 1 ] && [ -s "$dir/perf.data" ] && perf script -i "$dir/perf.data" -F comm,ip,sym,dso >"$dir/profile.txt" 2>/dev/null
}

# stop_profiled ends the profile's perf (it writes its data on SIGINT, then exits 0 or 130)
# and its daemon, whichever of them is running.
stop_profiled() {
  if [ -n "${perf_pid:-}" ]; then kill -INT "$perf_pid" 2>/dev/null; wait "$perf_pid"; fi
  if [ -n "${daemon_pid:-}" ]; then kill -TERM "$daemon_pid" 2>/dev/null; wait "$daemon_pid"; fi
  perf_pid="" daemon_pid=""
}

# Where one cold run's CPU goes: perf samples every process of profile_runs runs of
# bin/agentbox (make build), kernel and user, one sample per 250 µs of CPU (-c: a fixed
# period, so samples convert to milliseconds exactly). The folded script output is read by
# the report and not kept (tens of MB).
profile_runs=100
work=$(mktemp -d)
perf_pid="" daemon_pid=""
trap 'stop_profiled; rm -rf "$work"' EXIT
profile_args=()
hello=testdata/modules/hello.wasm
if bin/agentbox run --cache-dir "$work/cache" "$hello" >/dev/null &&
  perf record -q -e cpu-clock -c 250000 -g -o "$work/perf.data" -- \
    bash -c 'for _ in $(seq "$1"); do bin/agentbox run --cache-dir "$2" "$3" >/dev/null || exit 1; done' _ "$profile_runs" "$work/cache" "$hello" &&
  perf script -i "$work/perf.data" -F comm,ip,sym,dso >"$work/profile.txt" 2>/dev/null; then
  profile_args=(-profile "$work/profile.txt" -profile-runs "$profile_runs" -profile-period-ms 0.25)
else
  echo "FAIL: perf profile of $profile_runs cold runs" | tee -a "$out"
fi

# Where the daemon's CPU goes: perf samples a running agentboxd and every child it starts
# (perf -p follows new children) while it runs a batch of daemon_tasks hello tasks, from
# an enable to a disable on perf's control fifo, so that neither the daemon's start nor its
# warm-up is in it. The client (agentbox submit) runs outside the profile.
daemon_tasks=300
daemon_slots=8
if daemon_profile "$work/daemon"; then
  profile_args+=(-daemon-profile "$work/daemon/profile.txt" -daemon-profile-tasks "$daemon_tasks"
    -daemon-profile-slots "$daemon_slots" -daemon-profile-rusage-ms "$daemon_rusage_ms" -daemon-profile-wall-s "$daemon_wall_s")
else
  echo "FAIL: perf profile of agentboxd over $daemon_tasks tasks" | tee -a "$out"
fi

go run ./test/bench/report -bench "$out" -samples "$AGENTBOX_BENCH_SAMPLES" -out bench/REPORT.md -plot bench/latency.png "${profile_args[@]}" || exit 1
echo "report written to bench/REPORT.md"
if grep -q '^FAIL' "$out"; then
  echo "bench: some benchmarks failed (see bench/REPORT.md and $out)" >&2
  exit 1
fi
