package cgroups

import (
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
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
	time.Sleep(500 * time.Millisecond)
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
	start := time.Now()
	time.Sleep(time.Second)
	after, err := g.Stats()
	if err != nil {
		t.Fatal(err)
	}
	used, wall := after.CPUUsage-before.CPUUsage, time.Since(start)
	if used < 200*time.Millisecond {
		t.Errorf("a busy process used %v CPU in %v, want it to grow by >= 200ms", used, wall)
	}
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

// waitFor polls cond for up to 5s.
func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}
