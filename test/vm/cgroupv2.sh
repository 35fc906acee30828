#!/usr/bin/env bash
# make test-cgroupv2: the privileged suites that pass on this host, run again on a booted
# cgroup-v2-only kernel (qemu; KVM when it can boot Debian's kernel, else TCG), plus
# `agentbox check`. The security suite runs twice: each task in a child started for it,
# then each in a hot child made for it (AGENTBOX_TEST_HOT=1: the hot handoff on cgroup v2). The binaries are static
# (CGO_ENABLED=0), like the production one.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
export CGO_ENABLED=0
for pkg in cgroups sandbox test/security test/vm/probe; do
  go test -c -o "$out/$(basename "$pkg").test" "./$pkg"
done
go build -o "$out/agentbox" ./cmd/agentbox
# The child binary for sandbox's TestChildBinary (no Go toolchain in the VM); no VCS
# stamp, as the test binary has none.
go build -buildvcs=false -o "$out/agentbox-init" ./cmd/agentbox-init
# Under TCG everything runs several times slower: generous per-binary timeouts, and the
# harness's own timeout above their sum.
exec bash test/vm/run.sh --tree . --timeout "${VM_TIMEOUT:-1500}" \
  --copy "$out/agentbox" --env "AGENTBOX_CLI=$out/agentbox" \
  --copy "$out/agentbox-init" --env "AGENTBOX_TEST_CHILD=$out/agentbox-init" --copy "$PWD/docs" --copy "$PWD/examples" \
  "$out/probe.test@test/vm/probe" -test.v -test.timeout 5m --- \
  "$out/cgroups.test@cgroups" -test.v -test.timeout 10m --- \
  "$out/sandbox.test@sandbox" -test.v -test.timeout 15m --- \
  "$out/security.test@test/security" -test.v -test.timeout 20m --- \
  AGENTBOX_TEST_HOT=1 "$out/security.test@test/security" -test.v -test.timeout 20m --- \
  "$out/agentbox@." check
