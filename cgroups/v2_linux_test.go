package cgroups

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/cgroups/v3"
	"golang.org/x/sys/unix"

	"github.com/agentbox/agentbox/internal/privtest"
)

// hybridUnified is where a hybrid host mounts cgroup2, without controllers.
const hybridUnified = "/sys/fs/cgroup/unified"

// unifiedOwn is a cgroup2 group with no controllers, beneath this process's own group.
// These tests drive the v2 code paths that need no controller (CLONE_INTO_CGROUP,
// cgroup.kill, cgroup.freeze, cpu.stat, the supervisor move, missing-controller errors).
// On a hybrid host that is our own group in the controller-less /sys/fs/cgroup/unified;
// on a unified host it is a fresh child of our own group, whose subtree_control stays
// empty so its children get no controllers. Either way the tests run; none skips.
func unifiedOwn(t *testing.T) string {
	t.Helper()
	privtest.RequireRoot(t)
	_, unified, err := cgroups.ParseCgroupFileUnified(procSelfCgroup)
	if err != nil {
		t.Fatal(err)
	}
	var st unix.Statfs_t
	if err := unix.Statfs(hybridUnified, &st); err == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
		return filepath.Join(hybridUnified, unified)
	}
	if err := unix.Statfs(unifiedMount, &st); err != nil || st.Type != unix.CGROUP2_SUPER_MAGIC {
		t.Fatalf("neither %s nor %s is a cgroup2 mount", hybridUnified, unifiedMount)
	}
	base := filepath.Join(unifiedMount, unified, "agentbox-v2base-"+strconv.Itoa(os.Getpid())+"-"+strings.ReplaceAll(t.Name(), "/", "_"))
	if err := mkdirGroup(base); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := rmdirTree(base, time.Now().Add(5*time.Second)); err != nil {
			t.Error(err)
		}
	})
	return base
}

// unifiedManager is a Manager over the v2 code, on the controller-less mount.
func unifiedManager(t *testing.T) *Manager {
	t.Helper()
	own := unifiedOwn(t)
	h, err := setupV2(own, "agentbox-v2test-"+strconv.Itoa(os.Getpid()), nil, !exists(filepath.Join(own, "cgroup.type")))
	if err != nil {
		t.Fatalf("setupV2: %v", err)
	}
	m := &Manager{h: h, pid: os.Getpid()}
	t.Cleanup(func() { removeParent(t, m) })
	return m
}

func TestV2BornInGroupThenCgroupKill(t *testing.T) {
	m := unifiedManager(t)
	g := create(t, m, "born", Limits{})
	if !exists(filepath.Join(g.h.groupDirs(g.name)[0], "cgroup.kill")) {
		t.Skip("kernel older than 5.14: no cgroup.kill")
	}
	sh := startIn(t, g, true, exec.Command("/bin/sh", "-c", `read go; sleep 60 & sleep 60 & wait`))
	if got := cgroupLines(t, sh.Process.Pid)[""]; !strings.HasSuffix(got, "/"+g.name) {
		t.Fatalf("child born in %q, want the group %s", got, g.name)
	}
	waitFor(t, func() bool { p, _ := g.Procs(); return len(p) == 3 }, "3 processes in the group")
	if err := g.Kill(); err != nil {
		t.Fatalf("Kill: %v", err)
	}
	if sig := waitSignal(t, sh); sig != syscall.SIGKILL {
		t.Errorf("shell ended with signal %v, want SIGKILL", sig)
	}
	if err := g.Delete(); err != nil || exists(g.h.groupDirs(g.name)[0]) {
		t.Errorf("Delete = %v; dir exists afterwards: %v", err, exists(g.h.groupDirs(g.name)[0]))
	}
}

func TestV2StatsCPUUsage(t *testing.T) {
	m := unifiedManager(t)
	g := create(t, m, "cpu", Limits{})
	startIn(t, g, true, helperCmd("spin"))
	var s Stats
	var err error
	waitFor(t, func() bool { s, err = g.Stats(); return err != nil || s.CPUUsage >= 100*time.Millisecond }, "100ms of CPU in cpu.stat")
	if err != nil {
		t.Fatalf("Stats: %v", err)
	}
}

func TestV2FreezeFallbackKills(t *testing.T) {
	m := unifiedManager(t)
	g := create(t, m, "freeze", Limits{})
	d := g.h.groupDirs(g.name)[0]
	sh := startIn(t, g, true, exec.Command("/bin/sh", "-c", `read go; sleep 60 & sleep 60 & wait`))
	waitFor(t, func() bool { p, _ := g.Procs(); return len(p) == 3 }, "3 processes in the group")
	if err := freezeAndKill(d); err != nil {
		t.Fatalf("freezeAndKill: %v", err)
	}
	if got := readTrim(t, filepath.Join(d, "cgroup.freeze")); got != "0" {
		t.Errorf("cgroup.freeze = %q after freezeAndKill, want thawed (0)", got)
	}
	waitFor(t, func() bool { p, _ := g.Procs(); return len(p) == 0 }, "the group to empty")
	if sig := waitSignal(t, sh); sig != syscall.SIGKILL {
		t.Errorf("shell ended with signal %v, want SIGKILL", sig)
	}
}

func TestV2LimitWithoutControllerLeavesNothing(t *testing.T) {
	m := unifiedManager(t)
	_, err := m.Create("nomem", Limits{MemoryBytes: 32 << 20})
	if err == nil || !strings.Contains(err.Error(), "memory.max") {
		t.Fatalf("Create with a memory limit and no memory controller = %v, want an error naming memory.max", err)
	}
	if names, _ := m.children(); len(names) != 0 {
		t.Errorf("failed Create left %v behind", names)
	}
}

func TestV2MissingControllerIsNamed(t *testing.T) {
	own := unifiedOwn(t)
	parent := "agentbox-v2missing-" + strconv.Itoa(os.Getpid())
	_, err := setupV2(own, parent, []string{"memory", "pids"}, true)
	if !errors.Is(err, ErrControllerMissing) || !strings.Contains(err.Error(), "[memory pids]") {
		t.Fatalf("setupV2 without memory/pids = %v, want ErrControllerMissing naming them", err)
	}
	if exists(filepath.Join(own, parent)) {
		t.Errorf("setupV2 created %s although it failed", parent)
	}
}

func TestV2EvacuateMovesProcessesToLeaf(t *testing.T) {
	own := filepath.Join(unifiedOwn(t), "agentbox-evac-"+strconv.Itoa(os.Getpid()))
	if err := mkdirGroup(own); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := rmdirTree(own, time.Now().Add(5*time.Second)); err != nil {
			t.Error(err)
		}
	})
	dir, err := os.Open(own)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("/bin/sleep", "60")
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(dir.Fd())}
	err = cmd.Start()
	dir.Close()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()

	if err := evacuate(own); err != nil {
		t.Fatalf("evacuate: %v", err)
	}
	if pids, err := readPids(filepath.Join(own, "cgroup.procs")); err != nil || len(pids) != 0 {
		t.Errorf("%s still holds %v (%v) after evacuate", own, pids, err)
	}
	leafPids, err := readPids(filepath.Join(own, supervisorLeaf, "cgroup.procs"))
	if err != nil || !slices.Contains(leafPids, cmd.Process.Pid) {
		t.Errorf("leaf holds %v (%v), want pid %d", leafPids, err, cmd.Process.Pid)
	}
}

// TestV2ReleaseMovesBackWhenAlone: release undoes evacuate only for a process alone in the
// leaf, in an own group with no other child; otherwise it leaves everything as it is.
func TestV2ReleaseMovesBackWhenAlone(t *testing.T) {
	own := filepath.Join(unifiedOwn(t), "agentbox-release-"+strconv.Itoa(os.Getpid()))
	if err := mkdirGroup(own); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := rmdirTree(own, time.Now().Add(stateDeadline)); err != nil {
			t.Error(err)
		}
	})
	self := sleeperIn(t, own)
	if err := evacuate(own); err != nil {
		t.Fatalf("evacuate: %v", err)
	}
	leaf := filepath.Join(own, supervisorLeaf)
	h := &v2{own: own, parent: filepath.Join(own, "agentbox")}

	other := filepath.Join(own, "not-ours")
	if err := mkdirGroup(other); err != nil {
		t.Fatal(err)
	}
	if err := h.release(self.Process.Pid); err != nil || !exists(leaf) {
		t.Fatalf("release beside a group not ours: %v, leaf exists %t; want it left alone", err, exists(leaf))
	}
	if err := unix.Rmdir(other); err != nil {
		t.Fatal(err)
	}

	stranger := sleeperIn(t, leaf)
	if err := h.release(self.Process.Pid); err != nil || !exists(leaf) {
		t.Fatalf("release with another process in the leaf: %v, leaf exists %t; want it left alone", err, exists(leaf))
	}
	_ = stranger.Process.Kill()
	_ = stranger.Wait()

	if err := h.release(self.Process.Pid); err != nil {
		t.Fatalf("release alone in the leaf: %v", err)
	}
	if exists(leaf) {
		t.Errorf("release left the leaf %s", leaf)
	}
	if pids, err := readPids(filepath.Join(own, "cgroup.procs")); err != nil || !slices.Equal(pids, []int{self.Process.Pid}) {
		t.Errorf("own holds %v (%v) after release, want the process moved back [%d]", pids, err, self.Process.Pid)
	}
}

// sleeperIn starts a sleep born in the cgroup dir, killed when the test ends.
func sleeperIn(t *testing.T, dir string) *exec.Cmd {
	t.Helper()
	f, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command("/bin/sleep", "3600")
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(f.Fd())}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return cmd
}
