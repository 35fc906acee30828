#!/usr/bin/env bash
# make mutate: every wall the design names must have a test that fails when that wall alone
# is gone. For each mutant of scripts/mutate/mutants.go (or those named: arguments, or
# MUTANTS="a b"), in turn: copy the working tree as it is (uncommitted changes included)
# outside the checkout, apply the mutant, regenerate the seccomp programs if it changes the
# policy, and run the suite that should catch it. A mutant is killed when that suite fails;
# it SURVIVED when the suite passes. The checkout itself is never modified.
#
# First the unmutated copy must pass the same suites (a red baseline would make every
# mutant look killed). Mutants run one after another: the machine's cores are the security
# suite's, whose timing-sensitive parts share them with nothing else of ours.
#
# Exit status: 0 when every mutant was killed (or skipped because this host cannot show its
# wall: cgroup v2 on a v1 host, say); 1 when one survived, did not apply, did not build or
# changed nothing; 2 when the baseline is red. Logs stay in MUTATE_OUT.
set -euo pipefail
# shellcheck disable=SC2086 # package lists are split on purpose
cd "$(dirname "$0")/.."
root=$PWD

export CGO_ENABLED=0
export AGENTBOX_REQUIRE_PRIVILEGED="${AGENTBOX_REQUIRE_PRIVILEGED:-1}" # a skip must not pass for a kill's absence
timeout="${MUTATE_TIMEOUT:-6m}"                                       # per test binary; the baseline needs 1-2 min
out="${MUTATE_OUT:-${TMPDIR:-/tmp}/agentbox-mutate-logs}"
# Tests that compare a document with the code: they fail for any change of the policy
# table, which proves nothing about the wall. Every other test runs.
skip='^(TestSyscallDocIsCurrent|TestNoNewExecDocIsCurrent)$'

names=("$@")
if [ "${#names[@]}" -eq 0 ] && [ -n "${MUTANTS:-}" ]; then
  read -r -a names <<<"$MUTANTS"
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/agentbox-mutate.XXXXXX")
table="$out/table.md"
# An interrupted run still shows what it found so far.
cleanup() {
  rm -rf "$work"
  if [ -z "${finished:-}" ] && [ -s "$table" ]; then
    echo "interrupted; the table so far:" >&2
    cat "$table" >&2
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p "$out" && rm -f "$out"/*.log "$out/table.md"

go build -o "$work/mutate" ./scripts/mutate
# Every row against the tree as it is, before anything slow: a snippet a refactor changed
# fails here, loudly, instead of turning its mutant into a no-op.
"$work/mutate" check -dir "$root"
"$work/mutate" list "${names[@]}" >"$work/list"

# One snapshot for the whole run: edits made in the checkout meanwhile change nothing.
cp -a "$root" "$work/snapshot"
arch=$(go env GOARCH)

# fresh makes $work/tree a pristine copy of the snapshot (always the same path, so the
# build cache serves every mutant's unchanged packages).
fresh() {
  rm -rf "$work/tree"
  cp -a "$work/snapshot" "$work/tree"
}

# regen rebuilds the embedded seccomp programs of $work/tree from its policy table.
regen() {
  (cd "$work/tree" && CGO_ENABLED=1 go run ./seccomp/internal/gen \
    -o "seccomp/filter_$arch.bpf" -noexec "seccomp/noexec_$arch.bpf") >>"$1" 2>&1
}

# suite LOG PKGS...: builds the test binaries (a mutant that does not build is an error of
# the mutant, not a kill), then runs them; the exit status of go test is returned.
build_tests() {
  local log=$1
  shift
  (cd "$work/tree" && go test -c -vet=off -o "$work/bin/" "$@") >>"$log" 2>&1
}
run_tests() {
  local log=$1
  shift
  (cd "$work/tree" && go test -count=1 -vet=off -timeout "$timeout" -skip "$skip" "$@") >>"$log" 2>&1
}

# failures names the first failing tests of a log (top level, then the first subtest) and
# the first failed assertion, or what ended the run when no test is named (a panic, a
# timeout).
failures() {
  local names
  names=$(sed -n 's/^--- FAIL: \([^ ]*\).*/\1/p' "$1" | awk '!seen[$0]++' | head -n 3 | paste -sd, -)
  local sub
  sub=$(sed -n 's/^ *--- FAIL: \([^ ]*\/[^ ]*\).*/\1/p' "$1" | head -n 1)
  if [ -n "$names" ]; then
    [ -n "$sub" ] && names="$names ($sub)"
    # The first assertion, so that a reader sees why without opening the log.
    local why
    why=$(grep -m1 -E '^\s+[A-Za-z0-9_]+_test\.go:[0-9]+: ' "$1" | sed -E 's/^\s+//' | cut -c1-110)
    echo "$names${why:+: $why}"
  elif grep -q '^panic: test timed out' "$1"; then
    # A hang: name the innermost test that was running.
    echo "timed out in $(grep -m1 -A4 'running tests:' "$1" | grep -E '^\s+Test' | tail -n 1 | sed -E 's/^\s+//')"
  elif grep -q -E '^(panic|fatal error): ' "$1"; then
    # A crash of a whole test binary: what it was, in which package.
    echo "$(grep -m1 -E '^(panic|fatal error): ' "$1" | cut -c1-80) in $(grep -m1 -E '^FAIL\s+\S+' "$1" | awk '{print $2}')"
  else
    grep -m1 -E '^FAIL\s' "$1" | cut -c1-80 || echo "no failing test named (see log)"
  fi
}

# The baseline: the unmutated copy passes every suite some selected mutant will run.
pkgs=$(awk -F'\t' '$4 == "-" { print $2 }' "$work/list" | tr ' ' '\n' | awk 'NF && !seen[$0]++' | paste -sd' ' -)
echo "== baseline (no mutant): $pkgs"
fresh
start=$SECONDS
if awk -F'\t' '$4 == "-" && $3 == "1"' "$work/list" | grep -q .; then
  regen "$out/baseline.log"
  for p in filter noexec; do
    cmp -s "$work/tree/seccomp/${p}_$arch.bpf" "$work/snapshot/seccomp/${p}_$arch.bpf" ||
      { echo "baseline: seccomp/${p}_$arch.bpf is stale (run make generate): policy mutants would test more than themselves" >&2; exit 2; }
  done
fi
if [ -n "$pkgs" ] && { ! build_tests "$out/baseline.log" $pkgs || ! run_tests "$out/baseline.log" $pkgs; }; then
  echo "baseline: the unmutated suite fails ($(failures "$out/baseline.log")); log: $out/baseline.log" >&2
  echo "a red baseline would make every mutant look killed: fix it first" >&2
  exit 2
fi
echo "baseline ok in $((SECONDS - start)) s"

{
  echo "| mutant | wall | result | first failing tests | s |"
  echo "| --- | --- | --- | --- | --- |"
} >"$table"
bad=0
total=$(wc -l <"$work/list")
i=0
while IFS=$'\t' read -r -u 3 name mpkgs mregen mskip wall; do
  i=$((i + 1))
  log="$out/$name.log"
  start=$SECONDS
  result="" detail=""
  if [ "$mskip" != "-" ]; then
    result="skipped" detail="$mskip"
  else
    fresh
    if ! "$work/mutate" apply -dir "$work/tree" "$name" >>"$log" 2>&1; then
      result="NOT APPLIED" detail="$(tail -n 1 "$log")"
    elif [ "$mregen" = 1 ] && ! regen "$log"; then
      result="NOT APPLIED" detail="the seccomp generator failed (see log)"
    elif [ "$mregen" = 1 ] && cmp -s "$work/tree/seccomp/filter_$arch.bpf" "$work/snapshot/seccomp/filter_$arch.bpf" &&
      cmp -s "$work/tree/seccomp/noexec_$arch.bpf" "$work/snapshot/seccomp/noexec_$arch.bpf"; then
      result="NO-OP" detail="the regenerated programs equal the unmutated ones"
    elif ! build_tests "$log" $mpkgs; then
      result="NO BUILD" detail="the mutated tree does not build (see log)"
    elif run_tests "$log" $mpkgs; then
      result="SURVIVED" detail="every test of $mpkgs passed"
    else
      result="killed" detail="$(failures "$log")"
    fi
  fi
  secs=$((SECONDS - start))
  case $result in killed | skipped) ;; *) bad=1 ;; esac
  printf '[%d/%d] %-24s %-11s %4ss  %s\n' "$i" "$total" "$name" "$result" "$secs" "$detail"
  echo "| \`$name\` | ${wall//|/\\|} | $result | ${detail//|/\\|} | $secs |" >>"$table"
done 3<"$work/list"

finished=1
echo
cat "$table"
echo
echo "table and logs: $out"
exit "$bad"
