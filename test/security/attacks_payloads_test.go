//go:build linux

package security

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/agentbox/agentbox/sandbox"
)

// attackPayloads are native attacks that run in place of wazero, after the full sandbox
// setup: each stands for a guest that already escaped wazero. A payload that survives its
// attack prints one JSON line {"attack": name, "result": what the kernel answered} and
// returns 0; the test parses that line. Results name errnos exactly ("EPERM"), joined by
// ", " when one attack takes several steps.
var attackPayloads = map[string]sandbox.Payload{}

// probes are single-answer attacks: the function returns the result string.
var probes = map[string]func(args []string) string{
	// Invariant 1: filesystem.
	"proc-self-exe":  func([]string) string { return errnoName(openPath("/proc/self/exe", unix.O_WRONLY, 0)) },
	"mount-tmpfs":    func([]string) string { return errnoName(mount("tmpfs", "/", "tmpfs")) },
	"fsopen-cgroup":  fsopenCgroup,
	"release-agent":  releaseAgent,
	"fd-walk-root":   func([]string) string { return fdWalk("/") },
	"fd-walk-dir":    func([]string) string { return fdWalk("/dirs/0") },
	"chdir-up":       chdirUp,
	"chroot":         func([]string) string { return errnoName(pathCall(unix.SYS_CHROOT, "/")) },
	"write-root":     writeRoot,
	"fsize":          fsize,
	"fd-exhaust":     fdExhaust,
	"mknod-device":   mknodDevice,
	"open-by-handle": func([]string) string { return errnoName(sys(unix.SYS_OPEN_BY_HANDLE_AT, ^uintptr(0), 0, 0)) },
	"plant-symlink":  plantSymlink,
	"plant-links":    plantLinks,

	// Invariant 2: syscalls.
	"unshare-newuser":     func([]string) string { return errnoName(sys(unix.SYS_UNSHARE, unix.CLONE_NEWUSER)) },
	"setns-net":           func([]string) string { return errnoName(sys(unix.SYS_SETNS, 0, unix.CLONE_NEWNET)) },
	"clone-newuser":       func([]string) string { return errnoName(sys(unix.SYS_CLONE, unix.CLONE_NEWUSER|uintptr(unix.SIGCHLD))) },
	"clone-thread-newnet": cloneThreadNewNet,
	"clone3":              func([]string) string { return errnoName(sys(unix.SYS_CLONE3, 0, 0)) },
	"execve":              func([]string) string { return errnoName(pathCall(unix.SYS_EXECVE, "/bin/sh")) },
	"execveat":            execveat,
	"memfd-create":        func([]string) string { return errnoName(pathCall(unix.SYS_MEMFD_CREATE, "x")) },
	"mmap-rwx":            mmapRWX,
	"io-uring-setup":      func([]string) string { return errnoName(sys(unix.SYS_IO_URING_SETUP, 1, 0)) },
	"bpf":                 func([]string) string { return errnoName(sys(unix.SYS_BPF, unix.BPF_PROG_LOAD, 0, 0)) },
	"perf-event-open": func([]string) string {
		return errnoName(sys(unix.SYS_PERF_EVENT_OPEN, 0, 0, ^uintptr(0), ^uintptr(0), 0))
	},
	"userfaultfd":       func([]string) string { return errnoName(sys(unix.SYS_USERFAULTFD, 0)) },
	"keyctl":            func([]string) string { return errnoName(sys(unix.SYS_KEYCTL, unix.KEYCTL_JOIN_SESSION_KEYRING, 0)) },
	"add-key":           addKey,
	"ptrace":            func([]string) string { return errnoName(sys(unix.SYS_PTRACE, unix.PTRACE_TRACEME)) },
	"process-vm-writev": processVMWritev,
	"x32-getpid":        func([]string) string { return errnoName(sys(0x40000000 | unix.SYS_GETPID)) },
	"int80-getpid":      int80Getpid,
	"tiocsti":           func([]string) string { return tiocsti(unix.TIOCSTI) },
	"tiocsti-highbit":   func([]string) string { return tiocsti(unix.TIOCSTI | 1<<32) },
	"prctl-raise":       prctlRaise,
	"setrlimit-raise":   setrlimitRaise,
	"seccomp-allow-all": seccompAllowAll,
	"threads-32-denied": threads32,
	"unknown-syscall":   func([]string) string { return errnoName(sys(1000)) },
	"kexec-load":        func([]string) string { return errnoName(sys(unix.SYS_KEXEC_LOAD, 0, 0, 0, ^uintptr(0))) },
	"uname":             uname,
	"sysinfo":           sysinfo,

	// Invariant 3: network.
	"inet-connect": inetConnect,
	"netlink": func([]string) string {
		return "socket " + errnoName(sys(unix.SYS_SOCKET, unix.AF_NETLINK, unix.SOCK_RAW, unix.NETLINK_ROUTE))
	},
	"socketpair":    socketpair,
	"abstract-unix": abstractUnix,
	"packet-socket": func([]string) string {
		return "socket " + errnoName(sys(unix.SYS_SOCKET, unix.AF_PACKET, unix.SOCK_RAW, 0))
	},
	"inet6-udp": func([]string) string {
		return "socket " + errnoName(sys(unix.SYS_SOCKET, unix.AF_INET6, unix.SOCK_DGRAM, 0))
	},
	"kill-all":       func([]string) string { return errnoName(sys(unix.SYS_KILL, ^uintptr(0), uintptr(unix.SIGKILL))) },
	"kill-scan":      killScan,
	"signal-task":    signalTask,
	"tgkill-other":   func([]string) string { return errnoName(sys(unix.SYS_TGKILL, 2, 2, uintptr(unix.SIGKILL))) },
	"pidfd-open":     func([]string) string { return errnoName(sys(unix.SYS_PIDFD_OPEN, 1, 0)) },
	"sethostname":    func([]string) string { return errnoName(pathCall(unix.SYS_SETHOSTNAME, "pwned")) },
	"unshare-probe":  unshareProbe,
	"setpriority":    setpriority,
	"fork":           func([]string) string { return errnoName(sys(unix.SYS_FORK)) },
	"vfork":          func([]string) string { return errnoName(sys(unix.SYS_VFORK)) },
	"fork-via-clone": func([]string) string { return errnoName(sys(unix.SYS_CLONE, uintptr(unix.SIGCHLD))) },
	"fork-bomb":      forkBomb,
}

// streaming are payloads that do not end by themselves, or end by dying: they write to
// stdout or the kernel kills them, so they take the writers directly.
var streaming = map[string]sandbox.Payload{
	"thread-bomb": threadBomb,
	"mem-hog":     memHog,
	"flood":       flood,
	"abort":       abortNoCore,
	"spin":        func([]string, io.Reader, io.Writer, io.Writer) int { return spin() },
	"sleep-forever": func(_ []string, _ io.Reader, stdout, _ io.Writer) int {
		emit(stdout, "sleep-forever", "sleeping")
		time.Sleep(time.Hour)
		return 0
	},
	"abstract-victim": func(args []string, _ io.Reader, stdout, _ io.Writer) int {
		return abstractVictim(args, stdout)
	},
}

func init() {
	for n, p := range probes {
		attackPayloads[n] = func(args []string, _ io.Reader, stdout, _ io.Writer) int {
			return emit(stdout, n, p(args))
		}
	}
	for n, p := range streaming {
		attackPayloads[n] = p
	}
}

// finding is the payload's JSON line.
type finding struct {
	Attack string `json:"attack"`
	Result string `json:"result"`
}

func emit(w io.Writer, attack, result string) int {
	b, _ := json.Marshal(finding{Attack: attack, Result: result})
	w.Write(append(b, '\n'))
	return 0
}

// sys makes one raw system call and returns only its errno (0 on success).
func sys(nr uintptr, args ...uintptr) syscall.Errno {
	_, e := sysRet(nr, args...)
	return e
}

func sysRet(nr uintptr, args ...uintptr) (uintptr, syscall.Errno) {
	var a [6]uintptr
	copy(a[:], args)
	r, _, e := unix.Syscall6(nr, a[0], a[1], a[2], a[3], a[4], a[5])
	return r, e
}

// errnoName spells an errno as the kernel headers do; "ok" for success.
func errnoName(e syscall.Errno) string {
	if e == 0 {
		return "ok"
	}
	if n := unix.ErrnoName(e); n != "" {
		return n
	}
	return "errno " + strconv.Itoa(int(e))
}

// atFDCWD is AT_FDCWD (-100) as a raw argument.
const atFDCWD = ^uintptr(99)

func cstr(s string) uintptr {
	p, _ := unix.BytePtrFromString(s)
	return uintptr(unsafe.Pointer(p))
}

// pathCall is a syscall whose only argument is a path or name.
func pathCall(nr uintptr, path string) syscall.Errno { return sys(nr, cstr(path), 0, 0) }

func openPath(path string, flags int, mode uint32) syscall.Errno {
	fd, e := sysRet(unix.SYS_OPENAT, atFDCWD, cstr(path), uintptr(flags), uintptr(mode))
	if e == 0 {
		sys(unix.SYS_CLOSE, fd)
	}
	return e
}

func mount(source, target, fstype string) syscall.Errno {
	return sys(unix.SYS_MOUNT, cstr(source), cstr(target), cstr(fstype), 0, 0)
}

func joinResults(parts ...string) string { return strings.Join(parts, ", ") }

// fsopenCgroup is the new mount API route to a cgroup v1 release_agent: a cgroup
// filesystem context, then fsconfig on it.
func fsopenCgroup([]string) string {
	fd, e := sysRet(unix.SYS_FSOPEN, cstr("cgroup"), 0)
	if e == 0 {
		defer sys(unix.SYS_CLOSE, fd)
	} else {
		fd = ^uintptr(0)
	}
	e2 := sys(unix.SYS_FSCONFIG, fd, unix.FSCONFIG_SET_STRING, cstr("release_agent"), cstr("/x"), 0)
	return joinResults("fsopen "+errnoName(e), "fsconfig "+errnoName(e2))
}

// releaseAgent is the classic cgroup v1 escape: write a host path into release_agent. There
// is no cgroupfs to find one in, and mounting one is denied.
func releaseAgent([]string) string {
	open := openPath("/sys/fs/cgroup/memory/release_agent", unix.O_WRONLY, 0)
	m := sys(unix.SYS_MOUNT, cstr("cgroup"), cstr("/"), cstr("cgroup"), 0, cstr("memory"))
	return joinResults("open "+errnoName(open), "mount "+errnoName(m))
}

// fdWalk opens start, walks ".." 64 times from the descriptor (never by path), and says
// where it ended: the listing of the directory it reached and whether that is "/".
func fdWalk(start string) string {
	fd, e := sysRet(unix.SYS_OPENAT, atFDCWD, cstr(start), unix.O_RDONLY|unix.O_DIRECTORY)
	if e != 0 {
		return "open " + start + " " + errnoName(e)
	}
	for range 64 {
		up, e := sysRet(unix.SYS_OPENAT, fd, cstr(".."), unix.O_RDONLY|unix.O_DIRECTORY)
		if e != 0 {
			return "openat .. " + errnoName(e)
		}
		sys(unix.SYS_CLOSE, fd)
		fd = up
	}
	var here, root unix.Stat_t
	sys(unix.SYS_FSTAT, fd, uintptr(unsafe.Pointer(&here)))
	sys(unix.SYS_NEWFSTATAT, atFDCWD, cstr("/"), uintptr(unsafe.Pointer(&root)), 0)
	where := "elsewhere"
	if here.Dev == root.Dev && here.Ino == root.Ino {
		where = "/"
	}
	return fmt.Sprintf("ends at %s: [%s]", where, strings.Join(listDir(fd), ","))
}

// listDir reads directory entries with getdents64 (not os.ReadDir: no hidden syscalls).
func listDir(fd uintptr) []string {
	buf := make([]byte, 4096)
	n, e := sysRet(unix.SYS_GETDENTS64, fd, uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)))
	if e != 0 {
		return []string{"getdents64 " + errnoName(e)}
	}
	var names []string
	for off := 0; off < int(n); {
		reclen := int(*(*uint16)(unsafe.Pointer(&buf[off+16])))
		nm := unix.ByteSliceToString(buf[off+19 : off+reclen])
		if nm != "." && nm != ".." {
			names = append(names, nm)
		}
		off += reclen
	}
	slices.Sort(names)
	return names
}

// chdirUp tries to climb out by changing directory 64 times, then asks where it is.
func chdirUp([]string) string {
	var first syscall.Errno
	for range 64 {
		if e := pathCall(unix.SYS_CHDIR, ".."); e != 0 {
			first = e
			break
		}
	}
	buf := make([]byte, 4096)
	n, e := sysRet(unix.SYS_GETCWD, uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)))
	cwd := "getcwd " + errnoName(e)
	if e == 0 {
		cwd = "getcwd " + unix.ByteSliceToString(buf[:n])
	}
	return joinResults("chdir "+errnoName(first), cwd)
}

// writeRoot tries to create a file and a directory in the empty root (it is a 64 KiB
// tmpfs: filling it would be the next attack if it were writable).
// plantSymlink leaves a link to a host secret in the writable preopen: the host, not the
// task, would follow it when it copies or uploads the output directory.
func plantSymlink([]string) string {
	return errnoName(sys(unix.SYS_SYMLINKAT, cstr("/etc/shadow"), atFDCWD, cstr("/dirs/0/evil")))
}

// plantLinks tries the linkat flags that link something other than a plain name: an open
// fd (AT_EMPTY_PATH) and a symlink's target (AT_SYMLINK_FOLLOW); a plain hard link within
// the preopen (WASI path_link) still works.
func plantLinks([]string) string {
	fd, e := sysRet(unix.SYS_OPENAT, atFDCWD, cstr("/dirs/0/f"), unix.O_CREAT|unix.O_WRONLY, 0o644)
	if e != 0 {
		return "open " + errnoName(e)
	}
	empty := sys(unix.SYS_LINKAT, fd, cstr(""), atFDCWD, cstr("/dirs/0/g"), unix.AT_EMPTY_PATH)
	follow := sys(unix.SYS_LINKAT, atFDCWD, cstr("/dirs/0/f"), atFDCWD, cstr("/dirs/0/h"), unix.AT_SYMLINK_FOLLOW)
	plain := sys(unix.SYS_LINKAT, atFDCWD, cstr("/dirs/0/f"), atFDCWD, cstr("/dirs/0/i"), 0)
	return joinResults("AT_EMPTY_PATH "+errnoName(empty), "AT_SYMLINK_FOLLOW "+errnoName(follow), "plain "+errnoName(plain))
}

func writeRoot([]string) string {
	creat := openPath("/fill", unix.O_CREAT|unix.O_WRONLY, 0o644)
	mkdir := sys(unix.SYS_MKDIRAT, atFDCWD, cstr("/d"), 0o755)
	return joinResults("creat "+errnoName(creat), "mkdir "+errnoName(mkdir))
}

// fsize writes args[0] (a file under a writable preopen) 64 KiB at a time until the
// kernel refuses, and says how far it got. Go ignores SIGXFSZ, so the write sees EFBIG.
func fsize(args []string) string {
	fd, e := sysRet(unix.SYS_OPENAT, atFDCWD, cstr(args[len(args)-1]), unix.O_CREAT|unix.O_WRONLY|unix.O_TRUNC, 0o644)
	if e != 0 {
		return "open " + errnoName(e)
	}
	chunk := make([]byte, 64<<10)
	total := 0
	for total < 1<<30 {
		n, e := sysRet(unix.SYS_WRITE, fd, uintptr(unsafe.Pointer(&chunk[0])), uintptr(len(chunk)))
		if e != 0 {
			return fmt.Sprintf("%s at %d", errnoName(e), total)
		}
		total += int(n)
	}
	return fmt.Sprintf("wrote %d", total)
}

// fdExhaust tries every way to multiply descriptors, then opens "/" until the kernel says
// no, and reports the last descriptor number it got.
func fdExhaust([]string) string {
	dup := sys(unix.SYS_DUP, 1)
	dup3 := sys(unix.SYS_DUP3, 1, 200, 0)
	dupfd := sys(unix.SYS_FCNTL, 1, unix.F_DUPFD, 100)
	last := uintptr(0)
	for range 10000 {
		fd, e := sysRet(unix.SYS_OPENAT, atFDCWD, cstr("/"), unix.O_PATH) // O_PATH: no Landlock right needed
		if e != 0 {
			return joinResults("dup "+errnoName(dup), "dup3 "+errnoName(dup3), "F_DUPFD "+errnoName(dupfd),
				fmt.Sprintf("openat %s after fd %d", errnoName(e), last))
		}
		last = fd
	}
	return fmt.Sprintf("10000 opens, last fd %d", last)
}

func mknodDevice([]string) string {
	// /dev/sda's numbers: a block device node would reach the host disk.
	return errnoName(sys(unix.SYS_MKNODAT, atFDCWD, cstr("/sda"), unix.S_IFBLK|0o600, uintptr(unix.Mkdev(8, 0))))
}

func cloneThreadNewNet([]string) string {
	// If this were allowed the new thread would run on our stack; the filter must say no.
	return errnoName(sys(unix.SYS_CLONE, unix.CLONE_THREAD|unix.CLONE_VM|unix.CLONE_SIGHAND|unix.CLONE_NEWNET))
}

func execveat([]string) string {
	// fd 0 is a pipe: the point is whether the call is even considered.
	return errnoName(sys(unix.SYS_EXECVEAT, 0, cstr(""), 0, 0, unix.AT_EMPTY_PATH))
}

func mmapRWX([]string) string {
	return errnoName(sys(unix.SYS_MMAP, 0, 4096, unix.PROT_READ|unix.PROT_WRITE|unix.PROT_EXEC,
		unix.MAP_PRIVATE|unix.MAP_ANONYMOUS, ^uintptr(0), 0))
}

func addKey([]string) string {
	payload := []byte("secret")
	return errnoName(sys(unix.SYS_ADD_KEY, cstr("user"), cstr("agentbox"), uintptr(unsafe.Pointer(&payload[0])),
		uintptr(len(payload)), ^uintptr(2))) // KEY_SPEC_SESSION_KEYRING = -3
}

func processVMWritev([]string) string {
	b := []byte("x")
	local := unix.Iovec{Base: &b[0], Len: 1}
	remote := unix.Iovec{Base: &b[0], Len: 1}
	return errnoName(sys(unix.SYS_PROCESS_VM_WRITEV, 1, uintptr(unsafe.Pointer(&local)), 1, uintptr(unsafe.Pointer(&remote)), 1, 0))
}

// tiocsti pushes a character into the controlling terminal's input. The high-bit variant
// slips past filters that compare only the low 32 bits of the request.
func tiocsti(req uint64) string {
	c := byte('x')
	return errnoName(sys(unix.SYS_IOCTL, 0, uintptr(req), uintptr(unsafe.Pointer(&c))))
}

// prctlRaise tries to win back what the sandbox took: dumpability, an ambient capability,
// and cleared no_new_privs (which prctl cannot clear; EINVAL would say the call got
// through).
func prctlRaise([]string) string {
	dump := sys(unix.SYS_PRCTL, unix.PR_SET_DUMPABLE, 1)
	amb := sys(unix.SYS_PRCTL, unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_RAISE, unix.CAP_SYS_ADMIN)
	keep := sys(unix.SYS_PRCTL, unix.PR_SET_KEEPCAPS, 1)
	return joinResults("dumpable "+errnoName(dump), "ambient "+errnoName(amb), "keepcaps "+errnoName(keep))
}

func setrlimitRaise([]string) string {
	lim := unix.Rlimit{Cur: 1 << 20, Max: 1 << 20}
	set := sys(unix.SYS_SETRLIMIT, unix.RLIMIT_NOFILE, uintptr(unsafe.Pointer(&lim)))
	pr := sys(unix.SYS_PRLIMIT64, 0, unix.RLIMIT_NOFILE, uintptr(unsafe.Pointer(&lim)), 0)
	return joinResults("setrlimit "+errnoName(set), "prlimit64 "+errnoName(pr))
}

// seccompAllowAll tries to stack a filter that allows everything (it could only narrow,
// never widen, but a user-notify filter would hand decisions to a process we control).
func seccompAllowAll([]string) string {
	insn := []unix.SockFilter{{Code: unix.BPF_RET | unix.BPF_K, K: unix.SECCOMP_RET_ALLOW}}
	prog := unix.SockFprog{Len: 1, Filter: &insn[0]}
	viaSeccomp := sys(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, 0, uintptr(unsafe.Pointer(&prog)))
	viaPrctl := sys(unix.SYS_PRCTL, unix.PR_SET_SECCOMP, unix.SECCOMP_MODE_FILTER, uintptr(unsafe.Pointer(&prog)))
	return joinResults("seccomp "+errnoName(viaSeccomp), "prctl "+errnoName(viaPrctl))
}

// threads32 makes the same denied call (socket) from 32 OS threads at once: TSYNC put the
// filter on every thread, including ones created after it was installed.
func threads32([]string) string {
	var mu sync.Mutex
	counts := map[string]int{}
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range 32 {
		wg.Go(func() {
			runtime.LockOSThread() // a thread of its own, exiting with the goroutine
			<-start
			e := sys(unix.SYS_SOCKET, unix.AF_INET, unix.SOCK_STREAM, 0)
			mu.Lock()
			counts[errnoName(e)]++
			mu.Unlock()
		})
	}
	close(start)
	wg.Wait()
	return countSummary(counts)
}

// countSummary renders {"EPERM": 32} as "EPERM x32", sorted.
func countSummary(counts map[string]int) string {
	var parts []string
	for k, v := range counts {
		parts = append(parts, fmt.Sprintf("%s x%d", k, v))
	}
	slices.Sort(parts)
	return strings.Join(parts, ", ")
}

func uname([]string) string {
	var u unix.Utsname
	e := sys(unix.SYS_UNAME, uintptr(unsafe.Pointer(&u)))
	if e != 0 {
		return errnoName(e)
	}
	return "sysname " + unix.ByteSliceToString(u.Sysname[:]) + " release " + unix.ByteSliceToString(u.Release[:])
}

func sysinfo([]string) string {
	var si unix.Sysinfo_t
	e := sys(unix.SYS_SYSINFO, uintptr(unsafe.Pointer(&si)))
	if e != 0 {
		return errnoName(e)
	}
	return fmt.Sprintf("procs %d totalram %d", si.Procs, si.Totalram)
}

// inetConnect connects to 127.0.0.1:args[0], a listener the test opened on the host.
func inetConnect(args []string) string {
	port, _ := strconv.Atoi(args[len(args)-1])
	fd, e := sysRet(unix.SYS_SOCKET, unix.AF_INET, unix.SOCK_STREAM, 0)
	if e != 0 {
		return "socket " + errnoName(e)
	}
	sa := unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: [4]byte{127, 0, 0, 1}}
	sa.Port = uint16(port>>8) | uint16(port&0xff)<<8 // network byte order
	e = sys(unix.SYS_CONNECT, fd, uintptr(unsafe.Pointer(&sa)), unsafe.Sizeof(sa))
	return "connect " + errnoName(e)
}

func socketpair([]string) string {
	var fds [2]int32
	return "socketpair " + errnoName(sys(unix.SYS_SOCKETPAIR, unix.AF_UNIX, unix.SOCK_STREAM, 0, uintptr(unsafe.Pointer(&fds))))
}

// abstractSockaddr is the abstract unix address "\0name".
func abstractSockaddr(name string) (unix.RawSockaddrUnix, uintptr) {
	sa := unix.RawSockaddrUnix{Family: unix.AF_UNIX}
	for i := range len(name) {
		sa.Path[1+i] = int8(name[i])
	}
	return sa, uintptr(2 + 1 + len(name))
}

// abstractUnix connects to the abstract unix socket args[0], bound by another task or the
// host: the channel abstract sockets open between processes that share nothing else.
func abstractUnix(args []string) string {
	fd, e := sysRet(unix.SYS_SOCKET, unix.AF_UNIX, unix.SOCK_STREAM, 0)
	if e != 0 {
		return "socket " + errnoName(e)
	}
	sa, n := abstractSockaddr(args[len(args)-1])
	return "connect " + errnoName(sys(unix.SYS_CONNECT, fd, uintptr(unsafe.Pointer(&sa)), n))
}

// abstractVictim (run without seccomp) binds and listens on the abstract socket args[0],
// says "listening", then waits to be stopped from outside.
func abstractVictim(args []string, stdout io.Writer) int {
	fd, e := sysRet(unix.SYS_SOCKET, unix.AF_UNIX, unix.SOCK_STREAM, 0)
	if e == 0 {
		sa, n := abstractSockaddr(args[len(args)-1])
		if e = sys(unix.SYS_BIND, fd, uintptr(unsafe.Pointer(&sa)), n); e == 0 {
			e = sys(unix.SYS_LISTEN, fd, 8)
		}
	}
	if e != 0 {
		return emit(stdout, "abstract-victim", "bind "+errnoName(e))
	}
	emit(stdout, "abstract-victim", "listening")
	time.Sleep(time.Hour)
	return 0
}

// killScan sends signal 0 to pids 2..1000: every answer but ESRCH would mean the pid is
// reachable.
func killScan([]string) string {
	counts := map[string]int{}
	for pid := uintptr(2); pid <= 1000; pid++ {
		counts[errnoName(sys(unix.SYS_KILL, pid, 0))]++
	}
	return countSummary(counts)
}

// signalTask sends SIGKILL to the host pid args[0] of another running task.
func signalTask(args []string) string {
	pid, _ := strconv.Atoi(args[len(args)-1])
	return joinResults("kill "+errnoName(sys(unix.SYS_KILL, uintptr(pid), uintptr(unix.SIGKILL))),
		"pidfd_open "+errnoName(sys(unix.SYS_PIDFD_OPEN, uintptr(pid), 0)))
}

// unshareProbe tries a user namespace (no capability needed, but refused to a
// multithreaded process) and a net namespace (needs CAP_SYS_ADMIN).
func unshareProbe([]string) string {
	return joinResults("user "+errnoName(sys(unix.SYS_UNSHARE, unix.CLONE_NEWUSER)),
		"net "+errnoName(sys(unix.SYS_UNSHARE, unix.CLONE_NEWNET)))
}

func setpriority([]string) string {
	prio := sys(unix.SYS_SETPRIORITY, unix.PRIO_PROCESS, 0, ^uintptr(19)) // nice -20
	var set unix.CPUSet
	set.Set(0)
	aff := sys(unix.SYS_SCHED_SETAFFINITY, 0, unsafe.Sizeof(set), uintptr(unsafe.Pointer(&set)))
	return joinResults("setpriority "+errnoName(prio), "sched_setaffinity "+errnoName(aff))
}

// forkBomb forks children that each pause forever, until fork fails; it reports the
// first refusal and how many children it had made. Each child runs only raw syscalls
// (pause, then exit), never Go code, since it is a copy of one thread of a Go program.
func forkBomb([]string) string {
	for n := 0; n < 100000; n++ {
		pid, _, e := unix.RawSyscall6(unix.SYS_CLONE, uintptr(unix.SIGCHLD), 0, 0, 0, 0, 0)
		if e != 0 {
			return fmt.Sprintf("%s after %d forks", errnoName(e), n)
		}
		if pid == 0 {
			for {
				unix.RawSyscall(unix.SYS_PAUSE, 0, 0, 0)
			}
		}
	}
	return "100000 forks"
}

// threadBomb starts goroutines that each lock an OS thread and block in it, so every one
// needs a new thread (clone with CLONE_THREAD, which the filter allows), until pids.max.
func threadBomb(_ []string, _ io.Reader, stdout, _ io.Writer) int {
	for i := 0; ; i++ {
		go func() {
			runtime.LockOSThread()
			time.Sleep(time.Hour)
		}()
		if i%16 == 0 {
			time.Sleep(time.Millisecond)
		}
		if i == 100000 {
			return emit(stdout, "thread-bomb", "100000 threads")
		}
	}
}

// memHog allocates and touches 1 MiB at a time, keeping all of it, up to 4 GiB.
var hoard [][]byte

func memHog(_ []string, _ io.Reader, stdout, _ io.Writer) int {
	for range 4096 {
		b := make([]byte, 1<<20)
		for i := 0; i < len(b); i += 4096 {
			b[i] = 1
		}
		hoard = append(hoard, b)
	}
	return emit(stdout, "mem-hog", "allocated 4 GiB")
}

// flood writes up to 10 GiB of 'x' to stdout, with no newline ever.
func flood(_ []string, _ io.Reader, stdout, _ io.Writer) int {
	buf := []byte(strings.Repeat("x", 1<<20))
	for range 10 << 10 {
		if _, err := stdout.Write(buf); err != nil {
			return 1
		}
	}
	return 0
}

// abortNoCore tries to leave a core file: it sets SIGABRT back to the default action and
// raises it (as abort() does), then, if still alive, dies of a real SIGSEGV with the
// default action. Its working directory is the read-only root; args[0], when given, is a
// writable preopen it moves into first, so a core would have somewhere to land.
func abortNoCore(args []string, _ io.Reader, stdout, _ io.Writer) int {
	if len(args) > 1 {
		pathCall(unix.SYS_CHDIR, args[len(args)-1]) // denied by the filter; the core would go to cwd
	}
	setDefault(unix.SIGABRT)
	sys(unix.SYS_TGKILL, uintptr(unix.Getpid()), uintptr(unix.Gettid()), uintptr(unix.SIGABRT))
	// Still here: the init of a pid namespace ignores a signal it raised at itself while the
	// action is the default. The kernel's own SIGSEGV is forced and does kill it.
	emit(stdout, "abort", "SIGABRT ignored by pid 1")
	os.Stdout.Sync()
	setDefault(unix.SIGSEGV)
	runtime.LockOSThread()
	*nilTarget = 1
	return 0
}

// nilTarget is never set: writing through it is a real fault at address 0.
var nilTarget *int

// setDefault sets sig's action to SIG_DFL with a raw rt_sigaction, behind the Go runtime's
// back (it would otherwise turn the signal into a Go panic).
func setDefault(sig unix.Signal) {
	var act [4]uintptr // handler, flags, restorer, mask: SIG_DFL is a zero handler
	sys(unix.SYS_RT_SIGACTION, uintptr(sig), uintptr(unsafe.Pointer(&act)), 0, 8)
}

func spin() int {
	for {
	}
}
