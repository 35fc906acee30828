package seccomp

import (
	"encoding/binary"
	"fmt"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Load installs bpf (from Compile, after Validate) on every thread of the
// calling process, for good.
//
// It sets PR_SET_NO_NEW_PRIVS, which lets an unprivileged process install a
// filter, then calls seccomp(SECCOMP_SET_MODE_FILTER,
// SECCOMP_FILTER_FLAG_TSYNC): the Go runtime already runs several threads,
// and a filter on one of them only would leave the others free. Both calls
// are raw syscalls on one locked OS thread, because no_new_privs is per
// thread and TSYNC requires it on the caller (the kernel copies it to the
// others). No cgo, no libseccomp.
func Load(bpf []byte) error {
	if err := Validate(bpf); err != nil {
		return err
	}
	prog := toSockFilters(bpf)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if _, _, errno := unix.RawSyscall6(unix.SYS_PRCTL, unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0, 0); errno != 0 {
		return fmt.Errorf("%w: prctl(PR_SET_NO_NEW_PRIVS): %w", ErrLoad, errno)
	}
	return installTSYNC(prog)
}

// Stack installs bpf (after Validate) on every thread of the calling process,
// on top of the filter Load installed: NoNewExecFilter, in stage two. Unlike
// Load it makes no prctl call, which that filter refuses: no_new_privs is
// already set, for good, on every thread. It makes exactly the call the
// filter below allows, seccomp(SECCOMP_SET_MODE_FILTER,
// SECCOMP_FILTER_FLAG_TSYNC), so that no thread keeps running without the new
// filter (the threads share the filter below, so TSYNC can synchronise them).
func Stack(bpf []byte) error {
	if err := Validate(bpf); err != nil {
		return err
	}
	return installTSYNC(toSockFilters(bpf))
}

// installTSYNC calls seccomp(2). With TSYNC a positive return is the id of a
// thread that could not be synchronised (it already had a diverging filter).
func installTSYNC(prog []unix.SockFilter) error {
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	r, _, errno := unix.RawSyscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER,
		unix.SECCOMP_FILTER_FLAG_TSYNC, uintptr(unsafe.Pointer(&fprog)))
	runtime.KeepAlive(prog)
	if errno != 0 {
		return fmt.Errorf("%w: seccomp(SET_MODE_FILTER, TSYNC) with %d instructions: %w", ErrLoad, len(prog), errno)
	}
	if r != 0 {
		return fmt.Errorf("%w: TSYNC could not synchronise thread %d", ErrLoad, r)
	}
	return nil
}

// toSockFilters decodes the program. libseccomp writes struct sock_filter in
// host byte order, the order the kernel reads.
func toSockFilters(bpf []byte) []unix.SockFilter {
	prog := make([]unix.SockFilter, len(bpf)/insnSize)
	for i := range prog {
		b := bpf[i*insnSize:]
		prog[i] = unix.SockFilter{
			Code: binary.NativeEndian.Uint16(b[0:2]),
			Jt:   b[2],
			Jf:   b[3],
			K:    binary.NativeEndian.Uint32(b[4:8]),
		}
	}
	return prog
}
