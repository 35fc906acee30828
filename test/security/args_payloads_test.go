//go:build linux

package security

import (
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/agentbox/agentbox/sandbox"
)

// argPayloads probe the argument pins of the filter: clone, futex and madvise are allowed
// only with the exact values the Go runtime passes. Each tries values a mask would let
// through, chosen so that a filter that did let them through answers something else (the
// kernel's own EFAULT or EINVAL, a wake, a merge) instead of starting a thread on this stack.
var argPayloads = map[string]sandbox.Payload{
	"clone-flags":   probe("clone-flags", cloneFlags),
	"futex-ops":     probe("futex-ops", futexOps),
	"madvise-other": probe("madvise-other", madviseOther),
}

// goThreads is the flag word of the Go runtime's own clones (newosproc on amd64,
// CLONE_SETTLS included): the one value the filter allows.
const goThreads = unix.CLONE_VM | unix.CLONE_FS | unix.CLONE_FILES | unix.CLONE_SIGHAND |
	unix.CLONE_SYSVSEM | unix.CLONE_THREAD | unix.CLONE_SETTLS

// cloneFlags tries two threads with one flag more than the runtime's, which a mask on
// CLONE_THREAD and CLONE_NEW* lets through, and a vfork. Passed through, the first stores
// its pidfd at address 0 (EFAULT) and the second asks for a sibling of a namespace's init,
// pid 1 (EINVAL): neither starts a thread on this stack.
func cloneFlags([]string) string {
	return joinResults(
		"thread+CLONE_PIDFD "+errnoName(sys(unix.SYS_CLONE, goThreads|unix.CLONE_PIDFD, 0, 0)),
		"thread+CLONE_PARENT "+errnoName(sys(unix.SYS_CLONE, goThreads|unix.CLONE_PARENT)),
		"CLONE_VM|CLONE_VFORK "+errnoName(sys(unix.SYS_CLONE, unix.CLONE_VM|unix.CLONE_VFORK|uintptr(unix.SIGCHLD))),
	)
}

// futex operations beyond the runtime's two (private FUTEX_WAIT and FUTEX_WAKE).
const (
	futexPrivate    = 0x80
	futexWake       = 1
	futexLockPI     = 6
	futexWaitBitset = 9
	futexWakeBitset = 10
)

// futexOps calls futex with val 1 on a word holding 0, so that nothing blocks if the filter
// lets an op through: the bitset wait answers EAGAIN (the word is not 1), the bitset wake
// wakes nobody, the PI lock finds no owner and takes it. The runtime's own wake succeeds.
func futexOps([]string) string {
	word := uint32(0)
	defer runtime.KeepAlive(&word)
	op := func(name string, op uintptr) string {
		return name + " " + errnoName(sys(unix.SYS_FUTEX, uintptr(unsafe.Pointer(&word)), op, 1, 0, 0, ^uintptr(0)))
	}
	return joinResults(
		op("WAIT_BITSET", futexWaitBitset|futexPrivate),
		op("WAKE_BITSET", futexWakeBitset|futexPrivate),
		op("LOCK_PI", futexLockPI|futexPrivate),
		op("WAKE_PRIVATE", futexWake|futexPrivate),
	)
}

// madviseOther gives a fresh page advice the Go runtime never gives: MADV_MERGEABLE offers
// it to KSM, whose merging of equal pages across processes is a cross-tenant side channel;
// MADV_DONTFORK changes what a fork would copy. MADV_DONTNEED is the runtime's own.
func madviseOther([]string) string {
	page, err := unix.Mmap(-1, 0, 4096, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return "mmap " + err.Error()
	}
	defer unix.Munmap(page)
	advise := func(name string, advice uintptr) string {
		return name + " " + errnoName(sys(unix.SYS_MADVISE, uintptr(unsafe.Pointer(&page[0])), 4096, advice))
	}
	return joinResults(
		advise("MADV_MERGEABLE", unix.MADV_MERGEABLE),
		advise("MADV_DONTFORK", unix.MADV_DONTFORK),
		advise("MADV_DONTNEED", unix.MADV_DONTNEED),
	)
}
