package cgroups

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
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

// controlFile is the path of a control file of g; controller matters on v1.
func controlFile(m *Manager, g *Group, controller, file string) string {
	if h, ok := m.h.(*v1); ok {
		return h.file(controller, g.name, file)
	}
	return filepath.Join(g.h.groupDirs(g.name)[0], file)
}

func TestCreateWritesLimits(t *testing.T) {
	m := testManager(t)
	tests := []struct {
		name   string
		limits Limits
		v1     map[string]string // "controller/file" → content
		v2     map[string]string
	}{
		{
			name:   "all limits",
			limits: Limits{MemoryBytes: 64 << 20, CPUs: 1.5, Pids: 32},
			v1: map[string]string{
				"memory/memory.limit_in_bytes":       "67108864",
				"memory/memory.memsw.limit_in_bytes": "67108864",
				"cpu/cpu.cfs_period_us":              "100000",
				"cpu/cpu.cfs_quota_us":               "150000",
				"pids/pids.max":                      "32",
			},
			v2: map[string]string{
				"memory/memory.max":       "67108864",
				"memory/memory.swap.max":  "0",
				"memory/memory.oom.group": "1",
				"cpu/cpu.max":             "150000 100000",
				"pids/pids.max":           "32",
			},
		},
		{
			name:   "fractional cpu",
			limits: Limits{CPUs: 0.25},
			v1:     map[string]string{"cpu/cpu.cfs_quota_us": "25000", "cpu/cpu.cfs_period_us": "100000"},
			v2:     map[string]string{"cpu/cpu.max": "25000 100000"},
		},
		{
			name:   "no limits",
			limits: Limits{},
			v1:     map[string]string{"cpu/cpu.cfs_quota_us": "-1", "pids/pids.max": "max"},
			v2:     map[string]string{"memory/memory.max": "max", "cpu/cpu.max": "max 100000", "pids/pids.max": "max", "memory/memory.oom.group": "1"},
		},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := create(t, m, "limits-"+strconv.Itoa(i), tt.limits)
			want := tt.v1
			if m.Mode() == Unified {
				want = tt.v2
			}
			for key, v := range want {
				c, file, _ := strings.Cut(key, "/")
				path := controlFile(m, g, c, file)
				if file == "memory.memsw.limit_in_bytes" && !exists(path) {
					continue // no swap accounting on this kernel
				}
				if got := readTrim(t, path); got != v {
					t.Errorf("%s = %q, want %q", path, got, v)
				}
			}
		})
	}
}

// TestSetLimitsRisesAndFalls: a pooled child's group takes its task's limits, above or
// below the pool's; on v1 memsw must never fall below limit_in_bytes on the way.
func TestSetLimitsRisesAndFalls(t *testing.T) {
	m := testManager(t)
	g := create(t, m, "setlimits", Limits{MemoryBytes: 64 << 20, CPUs: 1, Pids: 32})
	steps := []struct {
		name   string
		limits Limits
		memory string
	}{
		{"rise", Limits{MemoryBytes: 256 << 20, CPUs: 0.5, Pids: 64}, "268435456"},
		{"fall", Limits{MemoryBytes: 32 << 20, CPUs: 1.5, Pids: 16}, "33554432"},
	}
	for _, st := range steps {
		if err := g.SetLimits(st.limits); err != nil {
			t.Fatalf("%s: SetLimits(%+v): %v", st.name, st.limits, err)
		}
		want := map[string]string{"memory/memory.limit_in_bytes": st.memory, "memory/memory.memsw.limit_in_bytes": st.memory,
			"pids/pids.max": strconv.FormatInt(st.limits.Pids, 10), "cpu/cpu.cfs_quota_us": strconv.FormatInt(int64(st.limits.CPUs*100000), 10)}
		if m.Mode() == Unified {
			want = map[string]string{"memory/memory.max": st.memory, "pids/pids.max": strconv.FormatInt(st.limits.Pids, 10),
				"cpu/cpu.max": fmt.Sprintf("%d 100000", int64(st.limits.CPUs*100000))}
		}
		for key, v := range want {
			c, file, _ := strings.Cut(key, "/")
			path := controlFile(m, g, c, file)
			if file == "memory.memsw.limit_in_bytes" && !exists(path) {
				continue
			}
			if got := readTrim(t, path); got != v {
				t.Errorf("%s: %s = %q, want %q", st.name, path, got, v)
			}
		}
	}
	if err := g.SetLimits(Limits{Pids: -1}); err == nil {
		t.Error("SetLimits accepted pids -1")
	}
}

func TestCreateRejectsBadInput(t *testing.T) {
	m := testManager(t)
	tests := []struct {
		name    string
		group   string
		limits  Limits
		wantErr error
		wantMsg string
	}{
		{name: "negative memory", group: "bad", limits: Limits{MemoryBytes: -1}, wantErr: ErrInvalidLimits, wantMsg: "MemoryBytes -1"},
		{name: "negative pids", group: "bad", limits: Limits{Pids: -3}, wantErr: ErrInvalidLimits, wantMsg: "Pids -3"},
		{name: "negative cpus", group: "bad", limits: Limits{CPUs: -1}, wantErr: ErrInvalidLimits, wantMsg: "CPUs -1"},
		{name: "path escape", group: "../escape", wantErr: ErrInvalidName, wantMsg: `"../escape"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, err := m.Create(tt.group, tt.limits)
			if !errors.Is(err, tt.wantErr) || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Fatalf("Create(%q, %+v) = %v, %v; want %v naming %q", tt.group, tt.limits, g, err, tt.wantErr, tt.wantMsg)
			}
			if names, _ := m.children(); len(names) != 0 {
				t.Fatalf("a refused Create left groups behind: %v", names)
			}
		})
	}
}

func TestCreateRefusesExisting(t *testing.T) {
	m := testManager(t)
	g := create(t, m, "twice", Limits{Pids: 10})
	if _, err := m.Create("twice", Limits{}); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("second Create = %v, want fs.ErrExist", err)
	}
	for _, d := range g.h.groupDirs(g.name) {
		if !exists(d) {
			t.Errorf("failed second Create removed the first group's %s", d)
		}
	}
}

func TestAddProcJoinsEveryController(t *testing.T) {
	m := testManager(t)
	g := create(t, m, "join", Limits{})
	cmd := startIn(t, g, false, helperCmd("sleep"))
	lines := cgroupLines(t, cmd.Process.Pid)
	controllers := v1Controllers
	if m.Mode() == Unified {
		controllers = []string{""}
	}
	for _, c := range controllers {
		if !strings.HasSuffix(lines[c], "/"+g.name) {
			t.Errorf("controller %q: pid %d is in %q, want the group %s", c, cmd.Process.Pid, lines[c], g.name)
		}
	}
	if pids, err := g.Procs(); err != nil || !slices.Equal(pids, []int{cmd.Process.Pid}) {
		t.Errorf("Procs() = %v, %v; want [%d]", pids, err, cmd.Process.Pid)
	}
}

func TestOpenDirByMode(t *testing.T) {
	m := testManager(t)
	g := create(t, m, "opendir", Limits{})
	f, err := g.OpenDir()
	if m.Mode() == Legacy {
		if !errors.Is(err, ErrNotUnified) {
			t.Fatalf("OpenDir on v1 = %v, want ErrNotUnified", err)
		}
		return
	}
	if err != nil {
		t.Fatalf("OpenDir on v2: %v", err)
	}
	f.Close()
}

func TestOOMKillIsCounted(t *testing.T) {
	m := testManager(t)
	g := create(t, m, "oom", Limits{MemoryBytes: 32 << 20, Pids: 64})
	cmd := startIn(t, g, bornIn(m), helperCmd("alloc"))
	if sig := waitSignal(t, cmd); sig != syscall.SIGKILL {
		t.Fatalf("allocating 200 MiB under a 32 MiB limit ended with signal %v (state %v), want SIGKILL", sig, cmd.ProcessState)
	}
	s, err := g.Stats()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("stats after OOM: %+v", s)
	if s.OOMKills < 1 {
		t.Errorf("Stats().OOMKills = %d, want >= 1", s.OOMKills)
	}
	if s.PeakMemoryBytes < 16<<20 || s.PeakMemoryBytes > 33<<20 {
		t.Errorf("Stats().PeakMemoryBytes = %d, want near the 32 MiB limit", s.PeakMemoryBytes)
	}
}

func TestPidsMaxStopsForks(t *testing.T) {
	m := testManager(t)
	const limit = 8
	g := create(t, m, "pids", Limits{Pids: limit})
	// The shell forks 20 sleepers; past the limit its forks must fail.
	sh := exec.Command("/bin/sh", "-c", `read go; i=0; while [ $i -lt 20 ]; do sleep 30 & i=$((i+1)); done; echo done; sleep 30`)
	var out strings.Builder
	sh.Stdout, sh.Stderr = &out, &out
	startIn(t, g, bornIn(m), sh)
	waitFor(t, func() bool { n, _ := readKey(controlFile(m, g, "pids", "pids.events"), "max"); return n > 0 }, "a fork refused (pids.events max)")
	pids, err := g.Procs()
	if err != nil {
		t.Fatal(err)
	}
	if len(pids) > limit {
		t.Errorf("group holds %d processes, pids.max is %d", len(pids), limit)
	}
	if len(pids) < 2 {
		t.Errorf("group holds %d processes: the shell did not fork at all", len(pids))
	}
	events := readTrim(t, controlFile(m, g, "pids", "pids.events"))
	if max, _ := readKey(controlFile(m, g, "pids", "pids.events"), "max"); max < 1 {
		t.Errorf("pids.events = %q, want max >= 1 (forks refused)", events)
	}
	if st, err := g.Stats(); err != nil || st.PidsLimitHits < 1 {
		t.Errorf("Stats().PidsLimitHits = %d (%v), want >= 1 after refused forks", st.PidsLimitHits, err)
	}
	if err := g.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = sh.Wait() // output is complete only once Wait returns
	t.Logf("%d processes; pids.events %q; shell said %q", len(pids), events, out.String())
}

func TestCPUUsageGrowsAndQuotaThrottles(t *testing.T) {
	m := testManager(t)
	g := create(t, m, "cpu", Limits{CPUs: 0.5})
	startIn(t, g, bornIn(m), helperCmd("spin"))
	before, err := g.Stats()
	if err != nil {
		t.Fatal(err)
	}
	// Wait for the usage to grow (a state), then compare it with the wall time it took:
	// under the quota it can be at most half of it, plus one period of slack each way.
	// A ratio of two clocks of the same machine: a slower machine changes neither side.
	start := time.Now()
	var after Stats
	waitFor(t, func() bool {
		after, err = g.Stats()
		return err == nil && after.CPUUsage-before.CPUUsage >= 300*time.Millisecond
	}, "300ms of CPU used by a busy process")
	used, wall := after.CPUUsage-before.CPUUsage, time.Since(start)
	if limit := wall/2 + 150*time.Millisecond; used > limit {
		t.Errorf("a busy process with CPUs=0.5 used %v CPU in %v, want <= %v", used, wall, limit)
	}
}

func TestKillEmptiesGroup(t *testing.T) {
	m := testManager(t)
	g := create(t, m, "kill", Limits{Pids: 32})
	sh := exec.Command("/bin/sh", "-c", `read go; sleep 60 & sleep 60 & sleep 60 & wait`)
	startIn(t, g, bornIn(m), sh)
	waitFor(t, func() bool { p, _ := g.Procs(); return len(p) == 4 }, "4 processes in the group")
	if err := g.Kill(); err != nil {
		t.Fatalf("Kill: %v", err)
	}
	if pids, err := g.Procs(); err != nil || len(pids) != 0 {
		t.Fatalf("after Kill, Procs() = %v, %v; want empty", pids, err)
	}
	// cgroup.kill (v2) kills the group at once; the v1 loop signals one pid at a time, so
	// the shell may see its children die and exit on its own just before its SIGKILL lands.
	// Either way it is gone, which Procs above proved; only v2 promises the signal.
	if sig := waitSignal(t, sh); m.Mode() == Unified && sig != syscall.SIGKILL {
		t.Errorf("shell ended with signal %v, want SIGKILL", sig)
	}
}

func TestDeleteRemovesEveryDirectory(t *testing.T) {
	m := testManager(t)
	g, err := m.Create("delete", Limits{MemoryBytes: 64 << 20, CPUs: 1, Pids: 16})
	if err != nil {
		t.Fatal(err)
	}
	cmd := startIn(t, g, bornIn(m), helperCmd("sleep"))
	dirs := g.h.groupDirs(g.name)
	if m.Mode() == Legacy && len(dirs) < 3 {
		t.Fatalf("v1 group spans %d hierarchies (%v), want one per controller", len(dirs), dirs)
	}
	if err := g.Delete(); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	for _, d := range dirs {
		if _, err := os.Stat(d); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("after Delete, %s: %v; want not exist", d, err)
		}
	}
	if sig := waitSignal(t, cmd); sig != syscall.SIGKILL {
		t.Errorf("member ended with signal %v, want SIGKILL", sig)
	}
	if err := g.Delete(); err != nil {
		t.Errorf("second Delete = %v, want nil (idempotent)", err)
	}
}

// TestDeleteRemovesNestedGroups: a group holding a child group (no task can make one; an
// admin could) is removed whole, children first: the one-rmdir fast path must fall back.
func TestDeleteRemovesNestedGroups(t *testing.T) {
	m := testManager(t)
	g := create(t, m, "nested", Limits{Pids: 16})
	dirs := g.h.groupDirs(g.name)
	for _, d := range dirs {
		if err := os.Mkdir(filepath.Join(d, "inner"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := g.Delete(); err != nil {
		t.Fatalf("Delete of a group with a child group: %v", err)
	}
	for _, d := range dirs {
		if _, err := os.Stat(d); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("after Delete, %s: %v; want not exist", d, err)
		}
	}
}

func TestSweepRemovesOnlyDeadSupervisorsGroups(t *testing.T) {
	m := testManager(t)
	dead := *m
	dead.pid = deadPID(t)
	orphan, err := dead.Create("orphan", Limits{Pids: 8})
	if err != nil {
		t.Fatal(err)
	}
	victim := startIn(t, orphan, bornIn(m), helperCmd("sleep"))
	live := create(t, m, "live", Limits{})
	foreign := filepath.Join(m.h.parentDirs()[0], "not-ours")
	if err := os.Mkdir(foreign, 0o755); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(foreign)

	removed, err := m.Sweep()
	if err != nil {
		t.Fatalf("Sweep: %v", err)
	}
	if !slices.Equal(removed, []string{orphan.Name()}) {
		t.Errorf("Sweep removed %v, want [%s]", removed, orphan.Name())
	}
	for _, d := range orphan.h.groupDirs(orphan.name) {
		if exists(d) {
			t.Errorf("orphan dir %s survived Sweep", d)
		}
	}
	if sig := waitSignal(t, victim); sig != syscall.SIGKILL {
		t.Errorf("orphan's process ended with signal %v, want SIGKILL", sig)
	}
	for _, d := range append(live.h.groupDirs(live.name), foreign) {
		if !exists(d) {
			t.Errorf("Sweep removed %s, which belongs to a live supervisor or to no one", d)
		}
	}
}

// stateDeadline bounds a wait for a state that normally comes within milliseconds. It is
// generous on purpose: only a state that never comes fails, never a slow machine.
const stateDeadline = 2 * time.Minute

// waitFor polls cond until it holds, for up to stateDeadline.
func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	for deadline := time.Now().Add(stateDeadline); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("no %s after %s", what, stateDeadline)
}

// TestCloseUndoesNewManager: Close leaves the host as NewManager found it: no parent, and
// (v2) this process back in its own group with the controllers off again.
func TestCloseUndoesNewManager(t *testing.T) {
	privtest.RequireRoot(t)
	before := cgroupLines(t, os.Getpid())
	subtreeBefore := ownSubtree(t)
	m, err := newManager("agentbox-close-" + strconv.Itoa(os.Getpid()))
	if err != nil {
		t.Fatalf("newManager: %v", err)
	}
	create(t, m, "gone", Limits{Pids: 8}).Delete()
	if err := m.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for _, p := range m.h.parentDirs() {
		if exists(p) {
			t.Errorf("Close left the parent %s", p)
		}
	}
	if after := cgroupLines(t, os.Getpid()); !maps.Equal(after, before) {
		t.Errorf("after Close this process is in %v, was in %v", after, before)
	}
	if got := ownSubtree(t); got != subtreeBefore {
		t.Errorf("after Close own subtree_control = %q, was %q", got, subtreeBefore)
	}
	if err := m.Close(); err != nil {
		t.Errorf("second Close = %v, want nil", err)
	}
}

// ownSubtree is the v2 own group's cgroup.subtree_control ("" on v1).
func ownSubtree(t *testing.T) string {
	t.Helper()
	_, unified, err := cgroups.ParseCgroupFileUnified(procSelfCgroup)
	if err != nil || cgroups.Mode() != cgroups.Unified {
		return ""
	}
	return readTrim(t, filepath.Join(unifiedMount, ownUnified(unified), "cgroup.subtree_control"))
}

// TestCloseKeepsWhatIsInUse: Close never takes away what a running task needs, and a
// Manager whose parent another one's Close removed makes it again at its next Create.
func TestCloseKeepsWhatIsInUse(t *testing.T) {
	privtest.RequireRoot(t)
	name := "agentbox-inuse-" + strconv.Itoa(os.Getpid())
	first, err := newManager(name)
	if err != nil {
		t.Fatal(err)
	}
	second, err := newManager(name)
	if err != nil {
		t.Fatal(err)
	}
	// Runs after the task's cleanup (registered later, run earlier): must leave nothing.
	t.Cleanup(func() { removeParent(t, second) })
	if err := first.Close(); err != nil {
		t.Fatalf("Close of an idle Manager: %v", err)
	}
	g := create(t, second, "busy", Limits{Pids: 8})
	member := startIn(t, g, bornIn(second), helperCmd("sleep"))
	if err := second.Close(); err != nil {
		t.Fatalf("Close with a running task: %v", err)
	}
	for _, d := range g.h.groupDirs(g.name) {
		if !exists(d) {
			t.Errorf("Close removed the running task's group %s", d)
		}
	}
	if pids, _ := g.Procs(); !slices.Equal(pids, []int{member.Process.Pid}) {
		t.Errorf("after Close the running task's group holds %v, want [%d]", pids, member.Process.Pid)
	}
}

// TestCreateRemakesRemovedParent: another supervisor's Close may remove a parent it found
// empty while this Manager is idle; the next Create makes it again.
func TestCreateRemakesRemovedParent(t *testing.T) {
	m := testManager(t)
	for _, p := range m.h.parentDirs() {
		if err := unix.Rmdir(p); err != nil {
			t.Fatal(err)
		}
	}
	g := create(t, m, "again", Limits{MemoryBytes: 64 << 20, CPUs: 1, Pids: 8})
	for _, d := range g.h.groupDirs(g.name) {
		if !exists(d) {
			t.Errorf("Create after the parent was removed: %s missing", d)
		}
	}
	if got := readTrim(t, controlFile(m, g, "pids", "pids.max")); got != "8" {
		t.Errorf("pids.max = %q in the remade parent, want 8 (controllers enabled again)", got)
	}
}
