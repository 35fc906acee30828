package seccomp

import (
	"encoding/binary"
	"slices"
	"testing"

	"golang.org/x/sys/unix"
)

// Return values of the embedded program (SECCOMP_RET_*), and x86_64's audit token.
const (
	retAllow     = 0x7fff0000
	retErrno     = 0x00050000
	auditArchX86 = 0xc000003e
)

// evalFilter runs a classic BPF seccomp program on one call, as the kernel does, and
// returns its verdict. It knows the instructions libseccomp emits for this table (load a
// word of seccomp_data, AND, compare and jump, return) and fails the test on any other.
func evalFilter(t *testing.T, prog []byte, nr int, args ...uint64) uint32 {
	t.Helper()
	var data [64]byte // struct seccomp_data: nr, arch, instruction_pointer, args[6]
	binary.NativeEndian.PutUint32(data[0:], uint32(nr))
	binary.NativeEndian.PutUint32(data[4:], auditArchX86)
	for i, a := range args {
		binary.NativeEndian.PutUint64(data[16+8*i:], a)
	}
	var acc uint32
	for pc := 0; pc < len(prog)/insnSize; pc++ {
		in := prog[pc*insnSize:]
		code, jt, jf, k := binary.NativeEndian.Uint16(in), int(in[2]), int(in[3]), binary.NativeEndian.Uint32(in[4:])
		jump := func(cond bool) {
			if cond {
				pc += jt
			} else {
				pc += jf
			}
		}
		switch code {
		case 0x20: // BPF_LD|BPF_W|BPF_ABS
			acc = binary.NativeEndian.Uint32(data[k:])
		case 0x54: // BPF_ALU|BPF_AND|BPF_K
			acc &= k
		case 0x15: // BPF_JMP|BPF_JEQ|BPF_K
			jump(acc == k)
		case 0x25: // BPF_JMP|BPF_JGT|BPF_K
			jump(acc > k)
		case 0x35: // BPF_JMP|BPF_JGE|BPF_K
			jump(acc >= k)
		case 0x06: // BPF_RET|BPF_K
			return k
		default:
			t.Fatalf("instruction %d: opcode %#x that evalFilter does not know", pc, code)
		}
	}
	t.Fatal("program ran off its end")
	return 0
}

// TestEmbeddedPins runs the program every child loads (the embedded bytes, no libseccomp)
// on every value near the three pins and checks that exactly the Go runtime's values pass,
// the rest answering EPERM, high-half garbage included; and that what only a cgo build
// calls answers ENOSYS.
func TestEmbeddedPins(t *testing.T) {
	prog := Filter()
	check := func(name string, nr int, arg int, v uint64, allowed []uint64) {
		t.Helper()
		args := make([]uint64, 6)
		args[arg] = v
		want := uint32(retErrno | unix.EPERM)
		if slices.Contains(allowed, v) {
			want = retAllow
		}
		if got := evalFilter(t, prog, nr, args...); got != want {
			t.Errorf("%s(arg%d=%#x) = %#x, want %#x", name, arg, v, got, want)
		}
	}
	clone := []uint64{goThreadFlags}
	check("clone", unix.SYS_CLONE, 0, goThreadFlags, clone)
	check("clone", unix.SYS_CLONE, 0, uint64(unix.SIGCHLD), clone)
	for bit := range 64 {
		check("clone", unix.SYS_CLONE, 0, goThreadFlags^1<<bit, clone)
	}
	futex := []uint64{futexWaitPrivate, futexWakePrivate}
	madvise := []uint64{madvDontneed, madvFree, madvHugepage, madvNohugepage}
	for v := range uint64(0x400) {
		for _, hi := range []uint64{0, 1 << 32, 1 << 63} {
			check("futex", unix.SYS_FUTEX, 1, v|hi, futex)
			check("madvise", unix.SYS_MADVISE, 2, v|hi, madvise)
		}
	}
	for _, nr := range []int{unix.SYS_RSEQ, unix.SYS_SET_ROBUST_LIST, unix.SYS_SCHED_GETAFFINITY,
		unix.SYS_CLOCK_NANOSLEEP, unix.SYS_READV, unix.SYS_WRITEV, unix.SYS_EPOLL_WAIT,
		unix.SYS_EPOLL_CREATE1, unix.SYS_EVENTFD2, unix.SYS_CLONE3} {
		if got := evalFilter(t, prog, nr); got != retErrno|uint32(unix.ENOSYS) {
			t.Errorf("syscall %d = %#x, want ENOSYS", nr, got)
		}
	}
	if got := evalFilter(t, prog, unix.SYS_PRLIMIT64, 0, unix.RLIMIT_STACK, 0, 1); got != retErrno|uint32(unix.ENOSYS) {
		t.Errorf("prlimit64 read = %#x, want ENOSYS", got)
	}
	if got := evalFilter(t, prog, unix.SYS_PRLIMIT64, 0, unix.RLIMIT_STACK, 1, 0); got != retErrno|uint32(unix.EPERM) {
		t.Errorf("prlimit64 write = %#x, want EPERM", got)
	}
}

// TestEmbeddedNoNewExec runs the stacked program (the embedded bytes) on every protection
// value, high-half garbage included: PROT_EXEC in mmap, mprotect or pkey_mprotect answers
// EPERM, and so does any seccomp call and prctl(PR_SET_SECCOMP); everything else is left to
// the filter below (allow).
func TestEmbeddedNoNewExec(t *testing.T) {
	prog := NoNewExecFilter()
	eperm := uint32(retErrno | unix.EPERM)
	for _, nr := range []int{unix.SYS_MMAP, unix.SYS_MPROTECT, unix.SYS_PKEY_MPROTECT} {
		for prot := range uint64(16) {
			for _, hi := range []uint64{0, 1 << 32, 1 << 63} {
				want := uint32(retAllow)
				if prot&protExec != 0 {
					want = eperm
				}
				if got := evalFilter(t, prog, nr, 0, 4096, prot|hi, 0, 0, 0); got != want {
					t.Errorf("syscall %d prot %#x = %#x, want %#x", nr, prot|hi, got, want)
				}
			}
		}
	}
	for _, args := range [][]uint64{{seccompSetModeFilter, seccompFilterFlagSync}, {seccompSetModeFilter, 0}, {0, 0}, {3, 0}} {
		if got := evalFilter(t, prog, unix.SYS_SECCOMP, args...); got != eperm {
			t.Errorf("seccomp%v = %#x, want EPERM", args, got)
		}
	}
	if got := evalFilter(t, prog, unix.SYS_PRCTL, prSetSeccomp, 2); got != eperm {
		t.Errorf("prctl(PR_SET_SECCOMP) = %#x, want EPERM", got)
	}
	for _, nr := range []int{unix.SYS_PRCTL, unix.SYS_READ, unix.SYS_MUNMAP, unix.SYS_CLONE, unix.SYS_FUTEX} {
		if got := evalFilter(t, prog, nr, prSetVMA); got != retAllow {
			t.Errorf("syscall %d = %#x, want allow (left to the filter below)", nr, got)
		}
	}
}

// TestEmbeddedAllowsStackingOnce checks that the filter below lets through exactly the call
// Stack makes, seccomp(SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC), and refuses every
// other mode and flag word with EPERM (high-half garbage included).
func TestEmbeddedAllowsStackingOnce(t *testing.T) {
	prog := Filter()
	for op := range uint64(5) {
		for flags := range uint64(64) {
			for _, hi := range []uint64{0, 1 << 32} {
				want := uint32(retErrno | unix.EPERM)
				if op == seccompSetModeFilter && flags|hi == seccompFilterFlagSync {
					want = retAllow
				}
				if got := evalFilter(t, prog, unix.SYS_SECCOMP, op, flags|hi); got != want {
					t.Errorf("seccomp(%d, %#x) = %#x, want %#x", op, flags|hi, got, want)
				}
			}
		}
	}
}
