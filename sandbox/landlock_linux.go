package sandbox

import (
	"errors"
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Landlock is the third wall for paths. The mount namespace and the empty root decide what
// a task can name; Landlock decides what it may do with what it reaches, by whatever way it
// reaches it: a host directory descriptor that leaked into the child (runc CVE-2024-21626)
// opens nothing, because no rule grants anything outside the task's own trees. Best effort:
// a kernel without Landlock runs tasks with the other walls only, and `agentbox check`
// says so; a kernel with it never runs a task outside its domain (a failure to enter it is
// the task's sandbox_error).
//
// Where: the last step of stage one, on the locked thread that then execs stage two. A
// domain belongs to the thread's credentials, and execve gives the new image the execing
// thread's, so stage two and every thread it ever starts are in the domain from their first
// instruction, stage two's own setup included; the seccomp allowlist needs no Landlock
// calls, and no all-threads machinery is needed. The exec itself must pass the domain: it
// opens the binary for READ_FILE and EXECUTE. A sealed memfd passes anyway (its file sits on
// the kernel's internal shmem mount, which Landlock lets through as it does pipes and nsfs,
// and on which it refuses rules); the file itself (Config.ExecInPlace, as `agentbox run`
// does) lies outside every tree of the task, so the domain grants exactly those two rights
// on that one inode, named through fdExe: no path in the child reaches it, and stage two
// closes fdExe before any guest code. The other place, stage two before installFilter,
// needs syscall.AllThreadsSyscall (a stop-the-world signal round to every thread of the
// runtime; it works only without cgo, which the child is) and leaves stage two's input
// reading outside the domain. Measured on the 2-core development VM, ruleset included, in a
// process with five threads: 64 µs here, 208 µs there (medians of 300); a whole run of
// hello.wasm shows no difference with the wall or without (docs/SECURITY.md).
//
// How: by hand on golang.org/x/sys/unix, not github.com/landlock-lsm/go-landlock. The
// library's value is enforcing a domain on every thread of a running Go program (libpsx, or
// TSYNC on ABI 8+); here one thread does it just before an exec, which is three system
// calls. The library would bring kernel.org/.../libcap/psx, a cgo package in cgo builds (the
// daemon's -race tests, which link this package, would get its pthread_create wrapper),
// for a policy of one table and some forty lines of calls.

// landlockMinABI is the oldest ABI the sandbox uses. ABI 1 (Linux 5.13 to 5.18) cannot
// grant REFER: a guest could never move a file from one directory of its preopen to
// another (EXDEV), so there the task goes without Landlock rather than break WASI's
// path_rename.
const landlockMinABI = 2

// landlockErratumSignal is the bit of LANDLOCK_CREATE_RULESET_ERRATA saying that signal
// scoping lets threads of one process signal each other whatever their domains (with the
// errata query itself in Linux 6.15; backported to 6.12 LTS). Stage one's other threads are outside the domain until the exec: a
// kernel without the fix could refuse the Go runtime's preemption signals to them in that
// window, so there signals are left unscoped.
const landlockErratumSignal = 1 << 1

// landlockAccess is how much of a tree a task may do.
type landlockAccess int

const (
	llNone  landlockAccess = iota // handled, granted nowhere: the root, a leaked host directory
	llRead                        // read-only preopens, the run's read-only compile cache
	llWrite                       // read-write preopens, the compile child's cache scratch
)

// landlockFS is the filesystem policy: every right the sandbox handles, the ABI that brought
// it (as go-landlock's abi_versions.go lists them), and the least access that is granted
// it, with who needs it. A right of a newer ABI than the kernel's is not handled: the
// kernel does not check it at all.
var landlockFS = []struct {
	right  uint64
	abi    int
	access landlockAccess
	why    string
}{
	{unix.LANDLOCK_ACCESS_FS_READ_FILE, 1, llRead, "path_open for reading; wazero reads cached code; the compile opens its temporary file O_RDWR"},
	{unix.LANDLOCK_ACCESS_FS_READ_DIR, 1, llRead, "fd_readdir, and any open of a directory (wazero opens each preopen)"},
	{unix.LANDLOCK_ACCESS_FS_WRITE_FILE, 1, llWrite, "path_open for writing, fd_write; the compile writes its code"},
	{unix.LANDLOCK_ACCESS_FS_MAKE_REG, 1, llWrite, "path_open with O_CREAT, path_link, path_rename; the compile's temporary file (os.CreateTemp)"},
	{unix.LANDLOCK_ACCESS_FS_MAKE_DIR, 1, llWrite, "path_create_directory; wazero makes its versioned cache folder when missing"},
	{unix.LANDLOCK_ACCESS_FS_REMOVE_FILE, 1, llWrite, "path_unlink_file, path_rename from or over a file; the compile renames its temporary file into place"},
	{unix.LANDLOCK_ACCESS_FS_REMOVE_DIR, 1, llWrite, "path_remove_directory, path_rename of a directory"},
	{unix.LANDLOCK_ACCESS_FS_REFER, 2, llWrite, "path_rename and path_link between two directories of one preopen"},
	{unix.LANDLOCK_ACCESS_FS_TRUNCATE, 3, llWrite, "path_open with O_TRUNC, fd_filestat_set_size"},
	{unix.LANDLOCK_ACCESS_FS_EXECUTE, 1, llNone, "nothing in a task runs from a file; the one exec, into stage two, has a rule of its own (enterLandlock)"},
	{unix.LANDLOCK_ACCESS_FS_MAKE_SYM, 1, llNone, "a link left in a preopen is followed by the host (wazero#2321); seccomp refuses symlinkat too"},
	{unix.LANDLOCK_ACCESS_FS_MAKE_FIFO, 1, llNone, "a FIFO in an output dir hangs the host process that opens it"},
	{unix.LANDLOCK_ACCESS_FS_MAKE_SOCK, 1, llNone, "a socket in an output dir for a host process to connect to"},
	{unix.LANDLOCK_ACCESS_FS_MAKE_CHAR, 1, llNone, "device nodes: a host process could open them where nodev does not hold"},
	{unix.LANDLOCK_ACCESS_FS_MAKE_BLOCK, 1, llNone, "device nodes, as MAKE_CHAR"},
	{unix.LANDLOCK_ACCESS_FS_IOCTL_DEV, 5, llNone, "ioctl on device files opened in the task: it has none to open"},
	{unix.LANDLOCK_ACCESS_FS_RESOLVE_UNIX, 9, llNone, "connect to a named unix socket: a task has no socket to connect"},
}

// landlockNet and landlockScopes are handled and granted to nobody: seccomp already
// refuses socket(2), the net namespace has no route out, and these hold even if either
// gave way.
var landlockNet = []struct {
	right uint64
	abi   int
}{
	{unix.LANDLOCK_ACCESS_NET_BIND_TCP, 4},
	{unix.LANDLOCK_ACCESS_NET_CONNECT_TCP, 4},
	{unix.LANDLOCK_ACCESS_NET_BIND_UDP, 10},
	{unix.LANDLOCK_ACCESS_NET_CONNECT_SEND_UDP, 10},
}

var landlockScopes = []struct {
	scope  uint64
	abi    int
	errata uint64 // errata the kernel must report fixed
	why    string
}{
	{unix.LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET, 6, 0, "no abstract-socket channel to any process outside the task (invariant 4)"},
	// The supervisor's signals in are not the task's to scope, and the Go runtime's between
	// its own threads stay within one domain.
	{unix.LANDLOCK_SCOPE_SIGNAL, 6, landlockErratumSignal, "no signal to any process outside the task (invariant 4)"},
}

// landlockSupport asks the kernel for its Landlock ABI version and fixed errata; err says
// why there is no Landlock at all.
func landlockSupport() (abi int, errata uint64, err error) {
	v, _, e := unix.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, 0, 0, unix.LANDLOCK_CREATE_RULESET_VERSION)
	switch e {
	case 0:
	case unix.ENOSYS:
		return 0, 0, fmt.Errorf("the kernel is built without Landlock (CONFIG_SECURITY_LANDLOCK): %w", e)
	case unix.EOPNOTSUPP:
		return 0, 0, fmt.Errorf("Landlock is built in but not enabled at boot (it is not in lsm=): %w", e)
	default:
		return 0, 0, fmt.Errorf("landlock_create_ruleset(VERSION): %w", e)
	}
	fixed, _, e := unix.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, 0, 0, unix.LANDLOCK_CREATE_RULESET_ERRATA)
	if e != 0 {
		fixed = 0 // a kernel older than the errata query: assume nothing fixed
	}
	return int(v), uint64(fixed), nil
}

// landlockPolicy is what a task gets on a kernel of this ABI and errata.
type landlockPolicy struct {
	attr  unix.LandlockRulesetAttr // the handled rights and scopes
	grant [llWrite + 1]uint64      // filesystem rights per access
}

func newLandlockPolicy(abi int, errata uint64) landlockPolicy {
	var p landlockPolicy
	for _, r := range landlockFS {
		if r.abi > abi {
			continue
		}
		p.attr.Handled_access_fs |= r.right
		for a := r.access; a != llNone && a <= llWrite; a++ {
			p.grant[a] |= r.right
		}
	}
	for _, r := range landlockNet {
		if r.abi <= abi {
			p.attr.Handled_access_net |= r.right
		}
	}
	for _, s := range landlockScopes {
		if s.abi <= abi && errata&s.errata == s.errata {
			p.attr.Scoped |= s.scope
		}
	}
	return p
}

// enterLandlock puts this thread, and so stage two after the exec, in a Landlock domain
// that grants each of the spec's trees at its mount point what its mode needs, the exec of
// the child binary, and nothing anywhere else. On a kernel without Landlock (or older than
// landlockMinABI) it does nothing; `agentbox check` reports it. abi is the domain's ABI,
// 0 when there is none.
func enterLandlock(s wireSpec) (abi int, err error) {
	abi, errata, err := landlockSupport()
	if s.Unsafe.NoLandlock || err != nil || abi < landlockMinABI {
		return 0, nil
	}
	p := newLandlockPolicy(abi, errata)
	// Sized through Scoped (ABI 6): an older kernel accepts it as long as what it does not
	// know is zero, which newLandlockPolicy sees to.
	size := unsafe.Offsetof(p.attr.Quiet_access_fs)
	fd, _, e := unix.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, uintptr(unsafe.Pointer(&p.attr)), size, 0)
	if e != 0 {
		return 0, fmt.Errorf("landlock_create_ruleset (ABI %d, %+v): %w", abi, p.attr, e)
	}
	ruleset := int(fd)
	defer unix.Close(ruleset)
	for _, b := range s.bindPoints() {
		access := llWrite
		if b.readOnly {
			access = llRead
		}
		if err := landlockAllowDir(ruleset, b.mount, p.grant[access]); err != nil {
			return 0, err
		}
	}
	// The exec into stage two opens the binary for reading and executing. The kernel
	// refuses a rule on a file of an internal filesystem (EBADFD): that is a sealed memfd,
	// which Landlock lets through anyway.
	exec := p.attr.Handled_access_fs & (unix.LANDLOCK_ACCESS_FS_READ_FILE | unix.LANDLOCK_ACCESS_FS_EXECUTE)
	if err := landlockAllow(ruleset, fdExe, exec); err != nil && !errors.Is(err, unix.EBADFD) {
		return 0, fmt.Errorf("the child binary: %w", err)
	}
	if _, _, e := unix.Syscall(unix.SYS_LANDLOCK_RESTRICT_SELF, fd, 0, 0); e != 0 {
		return 0, fmt.Errorf("landlock_restrict_self: %w", e)
	}
	return abi, nil
}

// landlockAllowDir grants rights beneath the directory dir.
func landlockAllowDir(ruleset int, dir string, rights uint64) error {
	d, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %s for its Landlock rule: %w", dir, err)
	}
	defer unix.Close(d)
	if err := landlockAllow(ruleset, d, rights); err != nil {
		return fmt.Errorf("%s: %w", dir, err)
	}
	return nil
}

// landlockAllow adds to the ruleset a rule granting rights on the file or beneath the
// directory open at fd. No rights, no rule (the kernel refuses an empty one).
func landlockAllow(ruleset, fd int, rights uint64) error {
	if rights == 0 {
		return nil
	}
	rule := unix.LandlockPathBeneathAttr{Allowed_access: rights, Parent_fd: int32(fd)}
	_, _, e := unix.Syscall6(unix.SYS_LANDLOCK_ADD_RULE, uintptr(ruleset), unix.LANDLOCK_RULE_PATH_BENEATH,
		uintptr(unsafe.Pointer(&rule)), 0, 0, 0)
	if e != 0 {
		return fmt.Errorf("landlock_add_rule (rights %#x): %w", rights, e)
	}
	return nil
}

// landlockReport says in a sentence what tasks get on this host, and whether Landlock is
// in force at all: for `agentbox check`.
func landlockReport() (detail string, enforced bool) {
	abi, errata, err := landlockSupport()
	switch {
	case err != nil:
		return fmt.Sprintf("not available: %v; tasks run behind the mount namespace and seccomp only", err), false
	case abi < landlockMinABI:
		return fmt.Sprintf("Landlock ABI %d: not used (it cannot grant REFER, so path_rename between directories would fail; needs ABI %d, Linux 5.19)", abi, landlockMinABI), false
	}
	p := newLandlockPolicy(abi, errata)
	d := fmt.Sprintf("Landlock ABI %d: enforced in every task (files: only its own trees", abi)
	if p.attr.Handled_access_net != 0 {
		d += "; TCP bind and connect: none"
	}
	if p.attr.Scoped&unix.LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET != 0 {
		d += "; abstract unix sockets"
		if p.attr.Scoped&unix.LANDLOCK_SCOPE_SIGNAL != 0 {
			d += " and signals"
		}
		d += " scoped to the task"
	}
	return d + ")", true
}
