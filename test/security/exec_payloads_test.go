//go:build linux

package security

import (
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/agentbox/agentbox/sandbox"
)

// lNoNewExec is the filter stage two stacks on the allowlist once the guest's code is
// mapped, before its first instruction (seccomp.NoNewExec).
const lNoNewExec = "seccomp no-new-exec (stacked)"

// execPayloads are what a guest that escaped wazero would do to run its own machine code or
// loosen the filter, where the first filter alone lets it: write a page, flip it to R|X and
// jump (W^X allows that order); map code directly; stack a filter with the one call the
// first filter allows (the sandbox's own, before the guest starts). Each answers something
// else without the stacked filter: ok, or ENOSYS for pkey_mprotect.
var execPayloads = map[string]sandbox.Payload{
	"mprotect-rw-rx": probe("mprotect-rw-rx", mprotectRWToRX),
	"map-exec":       probe("map-exec", mapExec),
	"stack-filter":   probe("stack-filter", stackFilter),
}

// anonPage maps one private anonymous page with prot.
func anonPage(prot uintptr) (uintptr, unix.Errno) {
	return sysRet(unix.SYS_MMAP, 0, 4096, prot, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS, ^uintptr(0), 0)
}

// mprotectRWToRX writes `ret` into a fresh RW page and makes it R|X; let through, it calls
// the page, native code of its own running.
func mprotectRWToRX([]string) string {
	page, e := anonPage(unix.PROT_READ | unix.PROT_WRITE)
	if e != 0 {
		return "mmap RW " + errnoName(e)
	}
	defer sys(unix.SYS_MUNMAP, page, 4096)
	// Reinterpret the variable, not the value: a raw mapping address is not a Go pointer.
	*(*byte)(*(*unsafe.Pointer)(unsafe.Pointer(&page))) = 0xc3 // ret
	if e := sys(unix.SYS_MPROTECT, page, 4096, unix.PROT_READ|unix.PROT_EXEC); e != 0 {
		return "mprotect RX " + errnoName(e)
	}
	entry := &page // a func value is a pointer to the code pointer
	(*(*func())(unsafe.Pointer(&entry)))()
	return "mprotect RX ok, ran its own code"
}

// mapExec asks for code pages without a write first: an anonymous R|X mapping, and a RW
// page given R|X with pkey_mprotect (pkey -1: the page's own key), the call the first filter
// does not name.
func mapExec([]string) string {
	rx, e := anonPage(unix.PROT_READ | unix.PROT_EXEC)
	if e == 0 {
		sys(unix.SYS_MUNMAP, rx, 4096)
	}
	mmap := "mmap R|X " + errnoName(e)
	page, e := anonPage(unix.PROT_READ | unix.PROT_WRITE)
	if e != 0 {
		return mmap + ", mmap RW " + errnoName(e)
	}
	defer sys(unix.SYS_MUNMAP, page, 4096)
	pkey := sys(unix.SYS_PKEY_MPROTECT, page, 4096, unix.PROT_READ|unix.PROT_EXEC, ^uintptr(0))
	return joinResults(mmap, "pkey_mprotect R|X "+errnoName(pkey))
}

// stackFilter installs an allow-all filter exactly as seccomp.Stack installs the stacked one
// (SECCOMP_SET_MODE_FILTER, TSYNC), then through prctl(PR_SET_SECCOMP). Harmless if it got
// through (filters only narrow), but a door the sandbox closes once its own filter is in.
func stackFilter([]string) string {
	insn := []unix.SockFilter{{Code: unix.BPF_RET | unix.BPF_K, K: unix.SECCOMP_RET_ALLOW}}
	prog := unix.SockFprog{Len: 1, Filter: &insn[0]}
	tsync := sys(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, unix.SECCOMP_FILTER_FLAG_TSYNC, uintptr(unsafe.Pointer(&prog)))
	viaPrctl := sys(unix.SYS_PRCTL, unix.PR_SET_SECCOMP, unix.SECCOMP_MODE_FILTER, uintptr(unsafe.Pointer(&prog)))
	return joinResults("seccomp TSYNC "+errnoName(tsync), "prctl "+errnoName(viaPrctl))
}
