package cgroups

import (
	"bufio"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/agentbox/agentbox/internal/privtest"
)

// helperEnv makes the test binary act as a helper process (GO_WANT_HELPER_PROCESS
// pattern of the os/exec tests) instead of running tests.
const helperEnv = "AGENTBOX_CGROUPS_HELPER"

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		runHelper(mode)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// runHelper waits for the go-ahead byte on stdin (so it does nothing before
// it is in its cgroup), then does its job.
func runHelper(mode string) {
	if _, err := io.ReadFull(os.Stdin, make([]byte, 1)); err != nil {
		os.Exit(3)
	}
	switch mode {
	case "alloc": // 200 MiB, every page touched, kept alive
		var keep [][]byte
		for range 200 {
			b := make([]byte, 1<<20)
			for i := 0; i < len(b); i += 4096 {
				b[i] = 1
			}
			keep = append(keep, b)
		}
		_ = keep
		os.Exit(0) // survived: the limit did not hold
	case "spin":
		for {
		}
	case "sleep":
		time.Sleep(time.Hour)
	}
	os.Exit(4)
}

// testManager is a real Manager whose parent is private to this test
// process, removed at the end.
func testManager(t *testing.T) *Manager {
	t.Helper()
	privtest.RequireRoot(t)
	m, err := newManager("agentbox-test-" + strconv.Itoa(os.Getpid()) + "-" + sanitize(t.Name()))
	if err != nil {
		t.Fatalf("newManager: %v", err)
	}
	t.Cleanup(func() { removeParent(t, m) })
	return m
}

// sanitize turns a test name into a valid cgroup name.
func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if strings.ContainsRune("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-", r) {
			return r
		}
		return '_'
	}, s)
}

// removeParent deletes every group left under m's parent, then closes m, which must
// leave nothing of the parent behind.
func removeParent(t *testing.T, m *Manager) {
	t.Helper()
	names, err := m.children()
	if err != nil {
		t.Errorf("cleanup: %v", err)
	}
	for _, n := range names {
		if err := m.group(n).Delete(); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	}
	if err := m.Close(); err != nil {
		t.Errorf("cleanup: Close: %v", err)
	}
	for _, p := range m.h.parentDirs() {
		if exists(p) {
			t.Errorf("cleanup: Close left the empty parent %s", p)
			_ = rmdirTree(p, time.Now().Add(stateDeadline))
		}
	}
}

// create is Manager.Create that fails the test on error and deletes the
// group at the end.
func create(t *testing.T, m *Manager, name string, l Limits) *Group {
	t.Helper()
	g, err := m.Create(name, l)
	if err != nil {
		t.Fatalf("Create(%q, %+v): %v", name, l, err)
	}
	t.Cleanup(func() {
		if err := g.Delete(); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return g
}

// helperCmd is the test binary re-executed as a helper.
func helperCmd(mode string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+mode)
	return cmd
}

// startIn starts cmd inside g and then lets it go by writing one line on
// its stdin. With born set the child is born in the group (OpenDir and
// CLONE_INTO_CGROUP, v2); otherwise it is moved in with AddProc.
func startIn(t *testing.T, g *Group, born bool, cmd *exec.Cmd) *exec.Cmd {
	t.Helper()
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if born {
		dir, err := g.OpenDir()
		if err != nil {
			t.Fatalf("OpenDir: %v", err)
		}
		defer dir.Close()
		cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(dir.Fd())}
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %v: %v", cmd.Args, err)
	}
	// Kill the whole group, not only cmd: its children may hold cmd's
	// output pipes open, and Wait would wait for them.
	cmd.WaitDelay = time.Second
	t.Cleanup(func() { _ = g.Kill(); _ = cmd.Process.Kill(); _ = cmd.Wait() })
	if !born {
		if err := g.AddProc(cmd.Process.Pid); err != nil {
			t.Fatalf("AddProc: %v", err)
		}
	}
	if _, err := stdin.Write([]byte("\n")); err != nil {
		t.Fatalf("release helper: %v", err)
	}
	return cmd
}

// bornIn reports whether tests on m should use CLONE_INTO_CGROUP.
func bornIn(m *Manager) bool { return m.Mode() == Unified }

// waitSignal waits for cmd and returns the signal that ended it (-1: none).
func waitSignal(t *testing.T, cmd *exec.Cmd) syscall.Signal {
	t.Helper()
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return -1
	}
	ws := ee.Sys().(syscall.WaitStatus)
	if !ws.Signaled() {
		return -1
	}
	return ws.Signal()
}

// cgroupLines reads /proc/<pid>/cgroup as controller list → path.
func cgroupLines(t *testing.T, pid int) map[string]string {
	t.Helper()
	f, err := os.Open(filepath.Join("/proc", strconv.Itoa(pid), "cgroup"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]string{}
	s := bufio.NewScanner(f)
	for s.Scan() {
		parts := strings.SplitN(s.Text(), ":", 3)
		if len(parts) == 3 {
			for _, c := range strings.Split(parts[1], ",") {
				out[c] = parts[2]
			}
		}
	}
	return out
}

// readTrim reads a control file, trimmed.
func readTrim(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// deadPID returns the PID of a process that has exited and been reaped.
func deadPID(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("/bin/true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	if alive(pid) {
		t.Skipf("pid %d was reused already", pid)
	}
	return pid
}
