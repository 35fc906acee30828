//go:build linux

package security

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/agentbox/agentbox/internal/testhook"
	"github.com/agentbox/agentbox/sandbox"
)

// The Landlock wall (sandbox/landlock_linux.go): what it refuses when it stands alone, and
// what it must still allow. The attack table's rows that Landlock would answer first take
// it down (noLandlock), so that they show their own wall on a kernel with Landlock and one
// without alike; the controls here show Landlock's answer to the same attacks.

// noLandlock takes the Landlock wall down.
var noLandlock = testhook.Unsafe{NoLandlock: true}

// requireLandlock skips t on a kernel without Landlock ABI 2 (the oldest the sandbox
// uses), unless AGENTBOX_REQUIRE_LANDLOCK=1, where the skip would hide a wall that never
// ran and so fails instead. make test sets it on the host; the cgroup-v2 VM leaves it
// unset (Debian's 6.1 there has ABI 2, so the tests run there all the same).
func requireLandlock(t *testing.T) {
	t.Helper()
	v := landlockABI()
	if v >= 2 {
		return
	}
	why := fmt.Sprintf("Landlock ABI %d, the sandbox needs 2", v)
	if v == 0 {
		why = "no Landlock on this kernel (landlock_create_ruleset refused the version query)"
	}
	if os.Getenv("AGENTBOX_REQUIRE_LANDLOCK") == "1" {
		t.Fatalf("%s, and AGENTBOX_REQUIRE_LANDLOCK=1 forbids skipping", why)
	}
	t.Skip(why)
}

// landlockABI is this kernel's Landlock ABI version, 0 without Landlock.
func landlockABI() int {
	v, _, e := unix.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, 0, 0, unix.LANDLOCK_CREATE_RULESET_VERSION)
	if e != 0 {
		return 0
	}
	return int(v)
}

// leakedHostDir plants a host directory the task's uid could write (mode 0777), with a
// secret it could read (mode 0644), in this process without close-on-exec, as plantHostFDs
// does, and gives the payload its identity; *dir is set to its path, for the checks. The
// control's Unsafe keeps stage one from closing it, so only Landlock stands between the
// task and the host's directory.
func leakedHostDir(dir *string) func(*testing.T, *sandbox.Sandbox, *job) {
	return func(t *testing.T, _ *sandbox.Sandbox, j *job) {
		*dir = hostDir(t)
		must(t, os.WriteFile(filepath.Join(*dir, "secret"), []byte("host secret\n"), 0o644))
		var st unix.Stat_t
		must(t, unix.Fstat(plantFD(t, *dir), &st))
		j.Args = append(j.Args, fmt.Sprintf("%d:%d", st.Dev, st.Ino))
	}
}

// firstPreopen is the host path of the job's first --dir.
func firstPreopen(j job) string { return j.Dirs[0].HostPath }

// hostHolds: the host directory dir(j) holds exactly names, sorted.
func hostHolds(dir func(job) string, names ...string) func(*testing.T, job, sandbox.Result) {
	return func(t *testing.T, j job, _ sandbox.Result) {
		entries, err := os.ReadDir(dir(j))
		must(t, err)
		var got []string
		for _, e := range entries {
			got = append(got, e.Name())
		}
		if !slices.Equal(got, names) {
			t.Fatalf("%s on the host holds %q, want %q", dir(j), got, names)
		}
	}
}

// landlockControl is an attack run twice with the same walls down (unsafe): with Landlock,
// which must refuse it (want), and without, where it gets through or meets the next wall
// (without). The second run is what proves the first can fail.
type landlockControl struct {
	name          string
	attack        attack
	unsafe        testhook.Unsafe
	want, without string
	// abi is the Landlock ABI that brought the refusal (0: the sandbox's oldest, 2). On an
	// older kernel the sandbox does not ask for it, and the run with Landlock must then
	// end as the run without does: proof that the sandbox still works there, not a skip.
	abi          int
	check        func(*testing.T, job, sandbox.Result) // after the run with Landlock
	checkWithout func(*testing.T, job, sandbox.Result)
}

// TestLandlockAlone runs each attack that Landlock refuses with the walls in front of it
// down, with and without Landlock.
func TestLandlockAlone(t *testing.T) {
	requireLandlock(t)
	payload := func(name string, setup func(*testing.T, *sandbox.Sandbox, *job)) attack {
		return attack{Name: name, From: "payload", payload: name, limits: quick, setup: setup}
	}
	var leaked string
	leakedDir := func(job) string { return leaked }
	noSeccomp := testhook.Unsafe{NoSeccomp: true}
	exposed := testhook.Unsafe{NoSeccomp: true, NoNetNamespace: true}
	controls := []landlockControl{
		{name: "close_range off: a leaked host directory opens nothing (runc CVE-2024-21626)",
			attack: payload("landlock-leaked-dir", leakedHostDir(&leaked)), unsafe: testhook.Unsafe{KeepInheritedFDs: true},
			want: "read EACCES, creat EACCES, mkdir EACCES", without: `read ok "host secret\n", creat ok, mkdir ok`,
			check: hostHolds(leakedDir, "secret"), checkWithout: hostHolds(leakedDir, "planted", "planted.d", "secret")},
		{name: "seccomp off: no symlink, FIFO, device or socket in a writable preopen",
			attack: payload("landlock-special-files", withWritableDir), unsafe: noSeccomp,
			want:    "symlink EACCES, mkfifo EACCES, mknod char EACCES, bind unix EACCES",
			without: "symlink ok, mkfifo ok, mknod char EPERM, bind unix ok",
			check:   hostHolds(firstPreopen), checkWithout: hostHolds(firstPreopen, "fifo", "link", "sock")},
		{name: "fd walk from /: the empty root is not readable",
			attack: payload("fd-walk-root", nil), want: "open / EACCES", without: "ends at /: []"},
		{name: "fd walk from a preopen: its parent is not readable",
			attack: payload("fd-walk-dir", withWritableDir), want: "openat .. EACCES", without: "ends at /: [dirs]"},
		{name: "seccomp and net namespace off: TCP connect refused (without Landlock the task connects)",
			attack: payload("inet-connect", hostListener), unsafe: exposed, want: "connect EACCES", without: "connect ok", abi: 4},
		{name: "seccomp and net namespace off: abstract socket on the host out of scope (without Landlock the task connects)",
			attack: payload("abstract-unix", hostAbstractListener), unsafe: exposed, want: "connect EPERM", without: "connect ok", abi: 6},
		{name: "seccomp off and capabilities kept: no mount inside a Landlock domain",
			attack: payload("mount-tmpfs", nil), unsafe: testhook.Unsafe{NoSeccomp: true, KeepCapabilities: true},
			want: "EPERM", without: "ok"},
	}
	abi := landlockABI()
	sb := newSandbox(t)
	for _, c := range controls {
		t.Run(c.name, func(t *testing.T) {
			without := c.unsafe
			without.NoLandlock = true
			if abi < c.abi {
				t.Logf("Landlock ABI %d here: this refusal needs ABI %d, so with Landlock the attack must end as it does without", abi, c.abi)
				c.want, c.check = c.without, c.checkWithout
			}
			for _, run := range []struct {
				label  string
				unsafe testhook.Unsafe
				want   string
				check  func(*testing.T, job, sandbox.Result)
			}{{"with Landlock", c.unsafe, c.want, c.check}, {"without Landlock", without, c.without, c.checkWithout}} {
				a := c.attack
				a.Name, a.Expect, a.check = a.Name+" ("+run.label+")", run.want, run.check
				a.setup = withUnsafe(run.unsafe, c.attack.setup)
				runAttack(t, sb, a)
			}
		})
	}
}

// TestLandlockGrants: every wall up, a task still does in its preopens what WASI does
// there (on any kernel: with Landlock these are its grants at work). The compile cache's
// grants are at work in every module row: each compiles through a read-write cache mount
// and runs from a read-only one.
func TestLandlockGrants(t *testing.T) {
	sb := newSandbox(t)
	withInput := func(t *testing.T, _ *sandbox.Sandbox, j *job) {
		dir := hostDir(t)
		must(t, os.WriteFile(filepath.Join(dir, "in.txt"), []byte("input data\n"), 0o644))
		j.Dirs = []sandbox.Dir{{HostPath: dir, GuestPath: "/data", ReadOnly: true}}
	}
	for _, a := range []attack{
		{Name: "read-write preopen: create, truncate, mkdir, rename and link across directories, unlink, rmdir",
			From: "payload", payload: "landlock-rw-work", limits: quick, setup: withWritableDir, check: hostHolds(firstPreopen, "kept"),
			Expect: "create ok, trunc ok, mkdir ok, rename into dir ok, link out of dir ok, rename ok, readdir [c d], " +
				"unlink ok, unlink in dir ok, rmdir ok, kept ok"},
		{Name: "read-only preopen: read a file, list the directory",
			From: "payload", payload: "landlock-ro-read", limits: quick, setup: withInput,
			Expect: `read "input data\n", readdir [in.txt]`},
	} {
		t.Run(a.Name, func(t *testing.T) { runAttack(t, sb, a) })
	}
}
