#!/usr/bin/env bash
# Installs what a fresh Debian machine lacks for building, testing and the cgroup-v2 VM
# suite. Idempotent: packages already present are not touched, and apt is not called at all
# when nothing is missing.
set -euo pipefail

packages=(
  libseccomp-dev   # compiles the seccomp policy into BPF (make generate / the seccomp tests)
  wabt             # wat2wasm: rebuilds the test modules from their .wat sources
  qemu-system-x86  # boots the cgroup-v2 kernel for make test-cgroupv2
  linux-image-amd64
  busybox-static   # the VM's userland
  cpio             # packs the VM's initramfs
  strace           # used by the seccomp tests to list what the runtime calls
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "setup: missing Debian packages: ${missing[*]}; run as root (or: sudo apt-get install ${missing[*]})" >&2
  exit 1
fi
echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
