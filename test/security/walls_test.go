//go:build linux

package security

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/agentbox/agentbox/internal/testhook"
	"github.com/agentbox/agentbox/outcome"
	"github.com/agentbox/agentbox/sandbox"
)

// Walls a mutation run found unguarded: removed one at a time, the rest of the suite stayed
// green. Each row of the attack table and each test here fails when its wall alone is gone.
// The rows' setups and checks are here; what does not fit the table's shape (a reading
// that needs the filter off, or a second wall behind the first) is a test of its own.

// Layers of the walls guarded here.
const (
	lCloseFDs  = "stage one close_range"
	lBindFlags = "preopen mount flags"
)

// plantedFDBase is where plantHostFDs puts its descriptors: far above anything the
// supervisor passes, so os/exec's descriptor shuffle in the forked child cannot land on
// them, and below the child's 1024 that fdScan looks at.
const plantedFDBase = 900

// plantHostFDs opens a host directory and a file in it in this (supervisor) process
// without close-on-exec, so the child inherits them exactly as runc's leaked cgroup fd
// (CVE-2024-21626): Go's fork/exec passes every descriptor that lacks FD_CLOEXEC, and only
// stage one's close_range stands between them and the guest. The payload is given their
// identities ("dev:ino") to look for; they are closed when the test ends.
func plantHostFDs(t *testing.T, _ *sandbox.Sandbox, j *job) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "secret")
	must(t, os.WriteFile(secret, []byte("host secret\n"), 0o600))
	for _, p := range []string{dir, secret} {
		fd := plantFD(t, p)
		var st unix.Stat_t
		must(t, unix.Fstat(fd, &st))
		j.Args = append(j.Args, fmt.Sprintf("%d:%d", st.Dev, st.Ino))
	}
}

// plantFD opens path and leaves an inheritable copy of it at plantedFDBase or above.
func plantFD(t *testing.T, path string) int {
	t.Helper()
	orig, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	must(t, err)
	defer unix.Close(orig)
	fd, err := unix.FcntlInt(uintptr(orig), unix.F_DUPFD, plantedFDBase) // the copy has FD_CLOEXEC clear
	must(t, err)
	t.Cleanup(func() { unix.Close(fd) })
	if flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil || flags&unix.FD_CLOEXEC != 0 {
		t.Fatalf("planted fd %d: flags %#x (%v), want FD_CLOEXEC clear", fd, flags, err)
	}
	return fd
}

// withReadOnlyDir offers one read-only preopen that the task's uid could write but for the
// mount: a read-only --dir is not idmapped, and hostDir is mode 0777.
func withReadOnlyDir(t *testing.T, _ *sandbox.Sandbox, j *job) {
	j.Dirs = []sandbox.Dir{{HostPath: hostDir(t), GuestPath: "/data", ReadOnly: true}}
}

// preopenUntouched: the first preopen is still empty on the host.
func preopenUntouched(t *testing.T, j job, _ sandbox.Result) {
	entries, err := os.ReadDir(j.Dirs[0].HostPath)
	if err != nil || len(entries) != 0 {
		t.Fatalf("the preopen on the host: %v, %d entries (first %v); want it empty", err, len(entries), entries)
	}
}

// noLinkOnHost: the guest left no "link" in its preopen on the host.
func noLinkOnHost(t *testing.T, j job, _ sandbox.Result) {
	if _, err := os.Lstat(filepath.Join(j.Dirs[0].HostPath, "link")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the guest made a link in its preopen on the host (lstat: %v)", err)
	}
}

// notForged: the verdict's message is the supervisor's, not the child's forged report.
func notForged(t *testing.T, _ job, res sandbox.Result) {
	if res.Message == forgedMessage {
		t.Fatalf("the verdict carries the forged report's message %q", res.Message)
	}
}

// both runs every check in order.
func both(checks ...func(*testing.T, job, sandbox.Result)) func(*testing.T, job, sandbox.Result) {
	return func(t *testing.T, j job, res sandbox.Result) {
		for _, c := range checks {
			c(t, j, res)
		}
	}
}

func stderrExactly(n int) func(*testing.T, job, sandbox.Result) {
	return func(t *testing.T, _ job, res sandbox.Result) {
		if len(res.Stderr) != n || !res.StderrTruncated {
			t.Fatalf("stderr %d bytes (truncated %t), want exactly the cap %d, truncated", len(res.Stderr), res.StderrTruncated, n)
		}
	}
}

// monotonicOrigin reads clock.wasm's monotonic time and says whether it counts from the
// task's start: no later than the whole task's wall time as the supervisor measured it
// (from before the spawn). A clock counting from the host's boot would read its uptime.
func monotonicOrigin(_ *testing.T, r sandbox.Result) string {
	if r.Outcome != outcome.OK || len(r.Stdout) != 32 {
		return fmt.Sprintf("outcome %s, %d bytes", r.Outcome, len(r.Stdout))
	}
	mono := time.Duration(binary.LittleEndian.Uint64(r.Stdout[8:16]))
	ran := time.Duration(r.Usage.WallMS+1) * time.Millisecond // WallMS is truncated
	if mono > ran {
		return fmt.Sprintf("monotonic reads %s in a task that ran %s", mono, ran)
	}
	return "counts from the task's start"
}

// withUnsafe wraps a row's setup so that its run takes the walls u names down.
func withUnsafe(u testhook.Unsafe, setup func(*testing.T, *sandbox.Sandbox, *job)) func(*testing.T, *sandbox.Sandbox, *job) {
	return func(t *testing.T, sb *sandbox.Sandbox, j *job) {
		j.hooks.Unsafe = u
		if setup != nil {
			setup(t, sb, j)
		}
	}
}

// TestPreopenMountFlags reads, from inside, the flags of a preopen's mount: nosuid, nodev
// and noexec always, read-only for a read-only --dir. The supervisor sets them on the
// detached tree (open_tree, mount_setattr); nothing else would. statfs is not in the
// allowlist, so the reading is made without the filter: the flags are fixed before it.
func TestPreopenMountFlags(t *testing.T) {
	sb := newSandbox(t)
	host := hostDir(t) // on the file system of every hostDir
	var st unix.Statfs_t
	must(t, unix.Statfs(host, &st))
	if st.Flags&(unix.ST_NOSUID|unix.ST_NODEV|unix.ST_NOEXEC|unix.ST_RDONLY) != 0 {
		// The detached tree keeps the source mount's flags: here the test cannot tell
		// the supervisor's from the host's (a tmpfs /tmp is often nosuid,nodev).
		t.Logf("the host mount of %s already has flags %#x: a missing flag of ours may go unseen here", host, st.Flags)
	}
	for _, tt := range []struct {
		name     string
		readOnly bool
		want     string
	}{
		{"read-write dir", false, "nosuid nodev noexec"},
		{"read-only dir", true, "rdonly nosuid nodev noexec"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ro := tt.readOnly
			runAttack(t, sb, attack{Name: "statfs " + tt.name, From: "payload", payload: "statfs-dirs", limits: quick,
				Expect: tt.want, setup: withUnsafe(testhook.Unsafe{NoSeccomp: true}, func(t *testing.T, _ *sandbox.Sandbox, j *job) {
					j.Dirs = []sandbox.Dir{{HostPath: hostDir(t), GuestPath: "/data", ReadOnly: ro}}
				})})
		})
	}
}

// TestCacheMountFlags reads, from inside a run of a module (a payload in its guest's place),
// the flags of the compile cache's mount: read-only, nosuid, nodev and noexec. The run's
// cache is the compiled code of its own digest, which only the sandboxed compile may
// write; file ownership would refuse the task's writes too, so only the mount flag shows
// this wall. statfs is not in the allowlist, so the reading is made without the filter.
func TestCacheMountFlags(t *testing.T) {
	sb := newSandboxWith(t, sandbox.Config{CacheDir: t.TempDir()})
	runAttack(t, sb, attack{Name: "statfs /cache", From: "payload", payload: "statfs-dirs", args: []string{"/cache"}, limits: quick,
		Expect: "rdonly nosuid nodev noexec", setup: withUnsafe(testhook.Unsafe{NoSeccomp: true}, func(t *testing.T, _ *sandbox.Sandbox, j *job) {
			j.Module = sharedModule("hello.wasm")(t)
		})})
}

// TestSecurebitsLocked reads PR_GET_SECUREBITS from inside: exactly the bits stage one
// sets (dropCapabilities), which survive the exec into stage two. NO_SETUID_FIXUP and
// KEEP_CAPS are locked off, not set. Under the filter prctl is denied but for PR_SET_VMA,
// so the reading is made without it (the bits are set before it and apart from it); the
// run under the filter shows that even reading them is refused.
func TestSecurebitsLocked(t *testing.T) {
	sb := newSandbox(t)
	for _, tt := range []struct {
		name   string
		unsafe testhook.Unsafe
		want   string
	}{
		{"without the filter: locked", testhook.Unsafe{NoSeccomp: true},
			"0xeb NOROOT|NOROOT_LOCKED|NO_SETUID_FIXUP_LOCKED|KEEP_CAPS_LOCKED|NO_CAP_AMBIENT_RAISE|NO_CAP_AMBIENT_RAISE_LOCKED"},
		{"under the filter: prctl denied", testhook.Unsafe{}, "EPERM"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			runAttack(t, sb, attack{Name: "securebits", From: "payload", payload: "securebits", limits: quick,
				Expect: tt.want, setup: withUnsafe(tt.unsafe, nil)})
		})
	}
}

// TestGuestSymlinkWazeroAlone runs the path_symlink row with the filter off: wasm/fs.go's
// refusal must hold by itself (the filter's symlinkat denial stands behind it, and with it
// on the row could not tell which of the two answered).
func TestGuestSymlinkWazeroAlone(t *testing.T) {
	sb := newSandbox(t)
	runAttack(t, sb, attack{Name: "guest path_symlink, filter off", From: "module", module: suiteModule("symlink.wasm"),
		wasiErrno: true, Expect: "WASI EPERM", check: noLinkOnHost,
		setup: withUnsafe(testhook.Unsafe{NoSeccomp: true}, withWritableDir)})
}
