//go:build linux

package security

import (
	"fmt"
	"strconv"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/agentbox/agentbox/sandbox"
)

// landlockPayloads stand for a guest that escaped wazero and meets the Landlock domain
// (sandbox/landlock_linux.go): through a host directory descriptor that leaked into the
// task, and in its own preopens, where it may do what WASI does and nothing more. Each
// prints one finding, as the attack payloads do.
var landlockPayloads = map[string]sandbox.Payload{
	"landlock-leaked-dir":    probe("landlock-leaked-dir", leakedDir),
	"landlock-special-files": probe("landlock-special-files", specialFiles),
	"landlock-rw-work":       probe("landlock-rw-work", rwWork),
	"landlock-ro-read":       probe("landlock-ro-read", roRead),
}

// leakedDir finds the planted host directory among fds 0..1023 by its "dev:ino" (args[1])
// and, through it, reads the secret beside it, creates a file and makes a directory: what
// runc CVE-2024-21626 did with its leaked cgroup fd. "read EACCES, creat EACCES, mkdir
// EACCES" under Landlock.
func leakedDir(args []string) string {
	fd, ok := plantedFD(args[1])
	if !ok {
		return "planted fd not found"
	}
	var buf [64]byte
	secret, e := sysRet(unix.SYS_OPENAT, fd, cstr("secret"), unix.O_RDONLY)
	read := errnoName(e)
	if e == 0 {
		n, _ := sysRet(unix.SYS_READ, secret, uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)))
		read = fmt.Sprintf("ok %q", buf[:n])
		sys(unix.SYS_CLOSE, secret)
	}
	creat := writeAt(fd, "planted", "from the task\n")
	mkdir := sys(unix.SYS_MKDIRAT, fd, cstr("planted.d"), 0o755)
	return joinResults("read "+read, "creat "+creat, "mkdir "+errnoName(mkdir))
}

// plantedFD returns the open descriptor among 0..1023 whose file is "dev:ino".
func plantedFD(devIno string) (uintptr, bool) {
	for fd := uintptr(0); fd < 1024; fd++ {
		var st unix.Stat_t
		if sys(unix.SYS_FSTAT, fd, uintptr(unsafe.Pointer(&st))) == 0 && fmt.Sprintf("%d:%d", st.Dev, st.Ino) == devIno {
			return fd, true
		}
	}
	return 0, false
}

// writeAt creates name beneath dir exclusively and writes s to it: "ok", or the errno of
// the step that failed.
func writeAt(dir uintptr, name, s string) string {
	fd, e := sysRet(unix.SYS_OPENAT, dir, cstr(name), unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY, 0o644)
	if e != 0 {
		return errnoName(e)
	}
	defer sys(unix.SYS_CLOSE, fd)
	b := []byte(s)
	if _, e := sysRet(unix.SYS_WRITE, fd, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b))); e != 0 {
		return "write " + errnoName(e)
	}
	return "ok"
}

// specialFiles makes, in the writable preopen /dirs/0, each kind of file WASI never makes:
// a symlink, a FIFO, a character device (/dev/null's numbers) and a unix socket bound to a
// path. seccomp refuses the calls first; run without it, the Landlock domain refuses them
// (no MAKE_SYM, MAKE_FIFO, MAKE_CHAR, MAKE_SOCK anywhere).
func specialFiles([]string) string {
	symlink := sys(unix.SYS_SYMLINKAT, cstr("/etc/shadow"), atFDCWD, cstr("/dirs/0/link"))
	fifo := sys(unix.SYS_MKNODAT, atFDCWD, cstr("/dirs/0/fifo"), unix.S_IFIFO|0o644, 0)
	char := sys(unix.SYS_MKNODAT, atFDCWD, cstr("/dirs/0/null"), unix.S_IFCHR|0o666, uintptr(unix.Mkdev(1, 3)))
	return joinResults("symlink "+errnoName(symlink), "mkfifo "+errnoName(fifo), "mknod char "+errnoName(char),
		"bind unix "+bindUnixPath("/dirs/0/sock"))
}

// bindUnixPath binds a new unix stream socket to path: "ok", or the errno of the step
// that failed ("socket EPERM" under the filter).
func bindUnixPath(path string) string {
	s, e := sysRet(unix.SYS_SOCKET, unix.AF_UNIX, unix.SOCK_STREAM, 0)
	if e != 0 {
		return "socket " + errnoName(e)
	}
	defer sys(unix.SYS_CLOSE, s)
	sa := unix.RawSockaddrUnix{Family: unix.AF_UNIX}
	for i := range path {
		sa.Path[i] = int8(path[i])
	}
	return errnoName(sys(unix.SYS_BIND, s, uintptr(unsafe.Pointer(&sa)), unsafe.Sizeof(sa)))
}

// rwWork does in the writable preopen /dirs/0 what WASI's file calls do there, by raw
// syscalls, one after the other: create and write, open with O_TRUNC and ftruncate, mkdir,
// rename into a subdirectory and link back out of it (both need REFER), rename, list,
// unlink, rmdir. It leaves one file, "kept", for the host to find. Each step is named with
// its result.
func rwWork([]string) string {
	dir, e := sysRet(unix.SYS_OPENAT, atFDCWD, cstr("/dirs/0"), unix.O_RDONLY|unix.O_DIRECTORY)
	if e != 0 {
		return "open preopen " + errnoName(e)
	}
	defer sys(unix.SYS_CLOSE, dir)
	var out []string
	step := func(name, result string) { out = append(out, name+" "+result) }
	step("create", writeAt(dir, "a", "scratch\n"))
	trunc, e := sysRet(unix.SYS_OPENAT, dir, cstr("a"), unix.O_TRUNC|unix.O_WRONLY)
	if e == 0 {
		e = sys(unix.SYS_FTRUNCATE, trunc, 4)
		sys(unix.SYS_CLOSE, trunc)
	}
	step("trunc", errnoName(e))
	step("mkdir", errnoName(sys(unix.SYS_MKDIRAT, dir, cstr("d"), 0o755)))
	step("rename into dir", errnoName(sys(unix.SYS_RENAMEAT, dir, cstr("a"), dir, cstr("d/a"))))
	step("link out of dir", errnoName(sys(unix.SYS_LINKAT, dir, cstr("d/a"), dir, cstr("b"), 0)))
	step("rename", errnoName(sys(unix.SYS_RENAMEAT, dir, cstr("b"), dir, cstr("c"))))
	step("readdir", "["+strings.Join(listDir(dir), " ")+"]")
	step("unlink", errnoName(sys(unix.SYS_UNLINKAT, dir, cstr("c"), 0)))
	step("unlink in dir", errnoName(sys(unix.SYS_UNLINKAT, dir, cstr("d/a"), 0)))
	step("rmdir", errnoName(sys(unix.SYS_UNLINKAT, dir, cstr("d"), unix.AT_REMOVEDIR)))
	step("kept", writeAt(dir, "kept", "written in the task\n"))
	return joinResults(out...)
}

// roRead reads /dirs/0/in.txt and lists /dirs/0, the read-only preopen: "read \"...\",
// readdir [...]".
func roRead([]string) string {
	fd, e := sysRet(unix.SYS_OPENAT, atFDCWD, cstr("/dirs/0/in.txt"), unix.O_RDONLY)
	if e != 0 {
		return "open in.txt " + errnoName(e)
	}
	var buf [64]byte
	n, e := sysRet(unix.SYS_READ, fd, uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)))
	sys(unix.SYS_CLOSE, fd)
	read := strconv.Quote(string(buf[:n]))
	if e != 0 {
		read = errnoName(e)
	}
	dir, e := sysRet(unix.SYS_OPENAT, atFDCWD, cstr("/dirs/0"), unix.O_RDONLY|unix.O_DIRECTORY)
	if e != 0 {
		return joinResults("read "+read, "open dir "+errnoName(e))
	}
	defer sys(unix.SYS_CLOSE, dir)
	return joinResults("read "+read, "readdir ["+strings.Join(listDir(dir), " ")+"]")
}
