//go:build linux

package security

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/agentbox/agentbox/internal/privtest"
	"github.com/agentbox/agentbox/sandbox"
)

// TestChildBinaryInPlace is the proof behind Config.ExecInPlace, which `agentbox run` uses:
// the task executes the binary file itself, not a sealed copy, and still nobody it could
// become can change that file (runc CVE-2019-5736: a task rewriting the binary it was
// executed from). The file is root's with mode 0755; the task's host uid is refused
// writing it by the permission check, and while the task runs even root is refused
// (ETXTBSY: the kernel denies writes to a file being executed). The task holds no path to
// it either: an empty root, no /proc, and the descriptor it was executed from closed at
// the start of stage two (TestSandboxPosture's descriptor check).
func TestChildBinaryInPlace(t *testing.T) {
	privtest.RequireRoot(t)
	// A copy of this test binary (the same build, so New takes it as the child) in a
	// directory anyone may enter: the refusal below is then the file's own, not a parent
	// directory's (go test builds in a 0700 one).
	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} {
		must(t, os.Chmod(d, 0o755))
	}
	src, err := os.ReadFile("/proc/self/exe")
	must(t, err)
	self := filepath.Join(dir, "agentbox-init")
	must(t, os.WriteFile(self, src, 0o755))
	sb, err := sandbox.New(sandbox.Config{ExecInPlace: true, ChildBinary: self})
	if err != nil {
		t.Fatalf("sandbox.New in place: %v", err)
	}
	t.Cleanup(func() { sb.Close() })
	task := startIdle(t, sb, postureLimits)
	defer task.finish(t)

	if got := readlink(t, procPath(task.pid, "exe")); got != self {
		t.Fatalf("the task's exe -> %q, want %q", got, self)
	}
	var st unix.Stat_t
	must(t, unix.Stat(self, &st))
	if st.Uid != 0 || st.Mode&0o022 != 0 {
		t.Fatalf("%s: uid %d mode %o; New must have refused it", self, st.Uid, st.Mode&0o777)
	}
	// As the task's host uid, with no capability: the open for writing is refused.
	sh := exec.Command("/bin/sh", "-c", `: >> "$0"`, self)
	sh.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(task.uid), Gid: uint32(task.uid)}}
	if out, err := sh.CombinedOutput(); err == nil || !strings.Contains(string(out), "Permission denied") {
		t.Errorf("as the task's uid %d, opening %s for writing: %v %q, want Permission denied", task.uid, self, err, out)
	}
	// As root, while the task runs from it: ETXTBSY.
	if f, err := os.OpenFile(procPath(task.pid, "exe"), os.O_WRONLY, 0); !errors.Is(err, syscall.ETXTBSY) {
		if err == nil {
			f.Close()
		}
		t.Errorf("root opening the running task's binary for writing: %v, want ETXTBSY", err)
	}
}
