#!/usr/bin/env bash
# Installs what a fresh Debian machine lacks for one purpose, and nothing more:
#
#   scripts/setup.sh demo     make demo: Go, and curl to read the daemon's health and metrics
#   scripts/setup.sh check    make check: wat2wasm, libseccomp for the seccomp generator
#   scripts/setup.sh unit     make test-unit: libseccomp for the cgo seccomp tests
#   scripts/setup.sh vm       make test-cgroupv2: qemu, a kernel, busybox, cpio
#   scripts/setup.sh bench    make bench: its baselines (bubblewrap, crun); libseccomp for the seccomp benchmark
#   scripts/setup.sh          all of the above (make setup, make test)
#
# Idempotent: packages already present are not touched, and apt is not called at all when
# nothing is missing. Go itself is not installed from apt (Debian's is older than go.mod's):
# without it every purpose fails with where to get it.
set -euo pipefail
cd "$(dirname "$0")/.."

# cgo against libseccomp: the seccomp policy compiler (make generate, make check) and its tests.
cgo_seccomp=(
  libseccomp-dev # compiles the seccomp policy into BPF
  pkg-config     # libseccomp-golang finds libseccomp with it
  gcc            # cgo
)
declare -A groups=(
  [demo]="curl"
  [check]="wabt ${cgo_seccomp[*]}" # wabt: wat2wasm rebuilds the test modules from their .wat sources
  [unit]="${cgo_seccomp[*]}"
  # The cgroup-v2 VM: qemu boots the host's Debian kernel with a busybox userland from a
  # cpio initramfs (test/vm/run.sh).
  [vm]="qemu-system-x86 linux-image-amd64 busybox-static cpio"
  # The baselines of make bench, run interleaved with agentbox in the same benchmark:
  # bwrap --unshare-all, and crun with memory and pids cgroups (test/bench/baselines_test.go,
  # crun_linux_test.go); perf, for the profile of cold runs (scripts/bench.sh); and the
  # seccomp policy compiler's benchmark (cgo).
  [bench]="bubblewrap crun linux-perf ${cgo_seccomp[*]}"
)

purposes=("$@")
[ "${#purposes[@]}" -gt 0 ] || purposes=(demo check unit vm bench)

want=$(sed -n 's/^go \([0-9.]*\)$/\1/p' go.mod)
if ! command -v go >/dev/null 2>&1; then
  echo "setup: go not found: install Go $want or newer from https://go.dev/dl/ and put it on PATH" >&2
  exit 1
fi
have=$(go env GOVERSION | sed 's/^go//')
if [ "$(printf '%s\n%s\n' "$want" "$have" | sort -V | head -n1)" != "$want" ]; then
  echo "setup: go $have is older than the go $want that go.mod asks for: install a newer Go from https://go.dev/dl/" >&2
  exit 1
fi

missing=()
for purpose in "${purposes[@]}"; do
  [ -n "${groups[$purpose]+set}" ] || { echo "setup: unknown purpose '$purpose' (want demo, check, unit, vm or bench)" >&2; exit 2; }
  for p in ${groups[$purpose]}; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" && continue
    [[ " ${missing[*]} " == *" $p "* ]] || missing+=("$p")
  done
done
if [ "${#missing[@]}" -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "setup: missing Debian packages for ${purposes[*]}: ${missing[*]}; run as root (or: sudo apt-get install ${missing[*]})" >&2
  exit 1
fi
echo "setup: installing for ${purposes[*]}: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
