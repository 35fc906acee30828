//go:build linux

package security

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/agentbox/agentbox/sandbox"
)

// wallPayloads are native payloads for the walls a mutation run found unguarded (a wall
// removed alone, and the rest of the suite still green): inherited descriptors, the
// supervisor's stderr cap, forged reports, read-only and flagged preopens, securebits.
// Those that answer at once print one finding, as the attack payloads do.
var wallPayloads = map[string]sandbox.Payload{
	"fd-scan":          probe("fd-scan", fdScan),
	"ro-create":        probe("ro-create", roCreate),
	"statfs-dirs":      probe("statfs-dirs", statfsDir),
	"securebits":       probe("securebits", securebits),
	"flood-stderr":     floodStderr,
	"forge-then-flood": forgeThenFlood,
	"forge-then-hog":   forgeThenHog,
}

// probe turns a single-answer attack into a payload that prints its finding.
func probe(name string, p func(args []string) string) sandbox.Payload {
	return func(args []string, _ io.Reader, stdout, _ io.Writer) int { return emit(stdout, name, p(args)) }
}

// fdScan lists every descriptor open among 0..1023 (F_GETFD answers) with its file type,
// and names those that are one of the objects the test planted, given as "dev:ino"
// arguments: "0 fifo, 1 fifo, ...; planted none".
func fdScan(args []string) string {
	planted := map[string]bool{}
	for _, a := range args[1:] {
		planted[a] = true
	}
	var open, hits []string
	for fd := uintptr(0); fd < 1024; fd++ {
		if sys(unix.SYS_FCNTL, fd, unix.F_GETFD) != 0 {
			continue
		}
		var st unix.Stat_t
		if e := sys(unix.SYS_FSTAT, fd, uintptr(unsafe.Pointer(&st))); e != 0 {
			open = append(open, fmt.Sprintf("%d fstat %s", fd, errnoName(e)))
			continue
		}
		open = append(open, fmt.Sprintf("%d %s", fd, fileKind(st.Mode)))
		if planted[fmt.Sprintf("%d:%d", st.Dev, st.Ino)] {
			hits = append(hits, strconv.Itoa(int(fd)))
		}
	}
	if len(hits) == 0 {
		hits = []string{"none"}
	}
	return strings.Join(open, ", ") + "; planted " + strings.Join(hits, " ")
}

// fileKind names the S_IFMT part of a mode; "anon" for none (anonymous inodes: the Go
// runtime's epoll and eventfd).
func fileKind(mode uint32) string {
	kinds := map[uint32]string{unix.S_IFIFO: "fifo", unix.S_IFDIR: "dir", unix.S_IFREG: "reg", unix.S_IFSOCK: "sock",
		unix.S_IFCHR: "chr", unix.S_IFBLK: "blk", unix.S_IFLNK: "lnk", 0: "anon"}
	if k, ok := kinds[mode&unix.S_IFMT]; ok {
		return k
	}
	return fmt.Sprintf("mode %#o", mode)
}

// roCreate creates a file and a directory in the read-only preopen /dirs/0 with raw
// syscalls (wazero's own read-only view is not in the way of an escaped guest).
func roCreate([]string) string {
	creat := openPath("/dirs/0/planted", unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY, 0o644)
	mkdir := sys(unix.SYS_MKDIRAT, atFDCWD, cstr("/dirs/0/planted.d"), 0o755)
	return joinResults("creat "+errnoName(creat), "mkdir "+errnoName(mkdir))
}

// statfsDir reports the mount flags of /dirs/0 that bound what a preopen can do:
// "rdonly nosuid nodev noexec" (those set, in that order). statfs is not in the allowlist;
// the test runs this one without the filter (mount flags do not depend on it).
func statfsDir(args []string) string {
	path := "/dirs/0"
	if len(args) > 1 {
		path = args[1]
	}
	var st unix.Statfs_t
	if e := sys(unix.SYS_STATFS, cstr(path), uintptr(unsafe.Pointer(&st))); e != 0 {
		return "statfs " + errnoName(e)
	}
	var set []string
	for _, f := range []struct {
		bit  int64
		name string
	}{{unix.ST_RDONLY, "rdonly"}, {unix.ST_NOSUID, "nosuid"}, {unix.ST_NODEV, "nodev"}, {unix.ST_NOEXEC, "noexec"}} {
		if st.Flags&f.bit != 0 {
			set = append(set, f.name)
		}
	}
	return strings.Join(set, " ")
}

// Securebits (linux/securebits.h), for reading PR_GET_SECUREBITS back.
var securebitNames = []string{"NOROOT", "NOROOT_LOCKED", "NO_SETUID_FIXUP", "NO_SETUID_FIXUP_LOCKED",
	"KEEP_CAPS", "KEEP_CAPS_LOCKED", "NO_CAP_AMBIENT_RAISE", "NO_CAP_AMBIENT_RAISE_LOCKED"}

// securebits reads PR_GET_SECUREBITS: "0x.. NAME|NAME..." or the errno (under the filter,
// prctl is denied but for PR_SET_VMA).
func securebits([]string) string {
	v, e := sysRet(unix.SYS_PRCTL, unix.PR_GET_SECUREBITS)
	if e != 0 {
		return errnoName(e)
	}
	var names []string
	for i, n := range securebitNames {
		if v&(1<<i) != 0 {
			names = append(names, n)
		}
	}
	if rest := v &^ (1<<len(securebitNames) - 1); rest != 0 {
		names = append(names, fmt.Sprintf("unknown %#x", rest))
	}
	return strings.TrimSpace(fmt.Sprintf("%#x %s", v, strings.Join(names, "|")))
}

// floodStderr writes 'x' to stderr, never stdout, and never stops by itself.
func floodStderr(_ []string, _ io.Reader, _, stderr io.Writer) int {
	buf := []byte(strings.Repeat("x", 1<<20))
	for {
		if _, err := stderr.Write(buf); err != nil {
			return 1
		}
	}
}

// forgedMessage is the message of every forged report: the test checks it never reaches
// the verdict.
const forgedMessage = "forged by the guest: all fine"

// forgeReport writes an ok result on the result pipe, as an escaped guest can, and closes
// it: the report is complete and waiting before the task does anything that gets it killed.
func forgeReport() {
	b := []byte(`{"outcome":"ok","exit_code":0,"message":"` + forgedMessage + `"}`)
	sys(unix.SYS_WRITE, 4, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b))) // sandbox's fdResult
	sys(unix.SYS_CLOSE, 4)
}

// forgeThenFlood forges an ok report, then writes stdout past any limit; it never returns
// (a return would make the child report its own exit code).
func forgeThenFlood(_ []string, _ io.Reader, stdout, _ io.Writer) int {
	forgeReport()
	buf := []byte(strings.Repeat("x", 1<<20))
	for {
		stdout.Write(buf)
	}
}

// forgeThenHog forges an ok report, then allocates until the cgroup OOM-kills it.
func forgeThenHog(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	forgeReport()
	memHog(args, stdin, stdout, stderr)
	time.Sleep(time.Hour) // never report: the forged report is the only one
	return 0
}
