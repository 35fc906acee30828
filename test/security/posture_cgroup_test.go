//go:build linux

package security

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// This file reads the cgroup hierarchies the way cgroups/ finds them (own cgroup from
// /proc/self/cgroup, mounts from /proc/self/mountinfo), independently of that package, so
// the posture and crash tests check what the kernel says rather than what agentbox believes.
// It works on cgroup v1 (legacy or hybrid) and v2 (unified).

// v1Checked are the v1 controllers agentbox places a task in.
var v1Checked = []string{"memory", "cpu", "cpuacct", "pids"}

// cgMount is one cgroup mount: where it is mounted and which cgroup path its root shows.
type cgMount struct{ point, root string }

// dirFor is the host directory of cgroup path p in this mount.
func (m cgMount) dirFor(p string) string {
	rel := p
	if m.root != "/" && (p == m.root || strings.HasPrefix(p, m.root+"/")) {
		rel = strings.TrimPrefix(p, m.root)
	}
	return filepath.Join(m.point, rel)
}

// cgroupView is this process's view of the hierarchies agentbox drives.
type cgroupView struct {
	unified bool
	mounts  map[string]cgMount // v1: controller → mount; v2: "" → the cgroup2 mount
	own     map[string]string  // v1: controller → our cgroup path; v2: "" → our path
}

// readCgroupView detects the mode (/sys/fs/cgroup is cgroup2 on a unified host) and reads
// our own cgroup and the mounts.
func readCgroupView(t testing.TB) cgroupView {
	t.Helper()
	var st unix.Statfs_t
	if err := unix.Statfs("/sys/fs/cgroup", &st); err != nil {
		t.Fatalf("statfs /sys/fs/cgroup: %v", err)
	}
	v := cgroupView{unified: st.Type == unix.CGROUP2_SUPER_MAGIC}
	var err error
	if v.mounts, err = cgroupMounts("/proc/self/mountinfo", v.unified); err != nil {
		t.Fatal(err)
	}
	if v.own, err = cgroupPaths("/proc/self/cgroup", v.unified); err != nil {
		t.Fatal(err)
	}
	return v
}

// keys are the map keys a view uses: the v1 controllers, or "" for v2.
func (v cgroupView) keys() []string {
	if v.unified {
		return []string{""}
	}
	return v1Checked
}

// cgroupMounts maps each v1 controller (or "" for cgroup2 when unified) to its mount.
func cgroupMounts(mountinfo string, unified bool) (map[string]cgMount, error) {
	f, err := os.Open(mountinfo)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	mounts := map[string]cgMount{}
	s := bufio.NewScanner(f)
	for s.Scan() {
		before, after, ok := strings.Cut(s.Text(), " - ")
		pre, post := strings.Fields(before), strings.Fields(after)
		if !ok || len(pre) < 5 || len(post) < 3 {
			continue
		}
		m := cgMount{point: unescapeMount(pre[4]), root: unescapeMount(pre[3])}
		switch {
		case unified && post[0] == "cgroup2":
			if _, seen := mounts[""]; !seen {
				mounts[""] = m
			}
		case !unified && post[0] == "cgroup":
			for _, opt := range strings.Split(post[2], ",") {
				if _, seen := mounts[opt]; !seen && slices.Contains(v1Checked, opt) {
					mounts[opt] = m
				}
			}
		}
	}
	if err := s.Err(); err != nil {
		return nil, err
	}
	for _, k := range (cgroupView{unified: unified}).keys() {
		if _, ok := mounts[k]; !ok {
			return nil, fmt.Errorf("%s: no cgroup mount for controller %q", mountinfo, k)
		}
	}
	return mounts, nil
}

func unescapeMount(s string) string {
	return strings.NewReplacer(`\040`, " ", `\011`, "\t", `\012`, "\n", `\134`, `\`).Replace(s)
}

// cgroupPaths reads a /proc/<pid>/cgroup file: controller → path for v1 (co-mounted
// controllers such as "cpu,cpuacct" each get the line), "" → path for v2's "0::" line.
func cgroupPaths(file string, unified bool) (map[string]string, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	paths := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			return nil, fmt.Errorf("%s: malformed line %q", file, line)
		}
		if unified {
			if parts[0] == "0" && parts[1] == "" {
				paths[""] = parts[2]
			}
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			if slices.Contains(v1Checked, c) {
				paths[c] = parts[2]
			}
		}
	}
	for _, k := range (cgroupView{unified: unified}).keys() {
		if _, ok := paths[k]; !ok {
			return nil, fmt.Errorf("%s: no entry for controller %q in %q", file, k, b)
		}
	}
	return paths, nil
}

// parentPaths is the cgroup path of the agentbox parent per key: beneath our own group. On
// v2 the supervisor may have moved itself into the leaf "<own>/supervisor" (cgroup v2's
// no-internal-processes rule); the parent then sits beside that leaf.
func (v cgroupView) parentPaths() map[string]string {
	out := map[string]string{}
	for k, own := range v.own {
		if v.unified && filepath.Base(own) == "supervisor" {
			own = filepath.Dir(own)
		}
		out[k] = filepath.Join(own, "agentbox")
	}
	return out
}

// parentDirs is the host directory of the agentbox parent per key.
func (v cgroupView) parentDirs() map[string]string {
	out := map[string]string{}
	for k, p := range v.parentPaths() {
		out[k] = v.mounts[k].dirFor(p)
	}
	return out
}

// taskGroupDirs lists, per key, the group directories named "<owner>-task-*".
func (v cgroupView) taskGroupDirs(t testing.TB, owner int) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for k, parent := range v.parentDirs() {
		matches, err := filepath.Glob(filepath.Join(parent, strconv.Itoa(owner)+"-task-*"))
		if err != nil {
			t.Fatal(err)
		}
		out[k] = matches
	}
	return out
}

// readProcsFile reads a cgroup.procs / tasks / cgroup.threads file as sorted ids.
func readProcsFile(path string) ([]int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var ids []int
	for _, f := range strings.Fields(string(b)) {
		id, err := strconv.Atoi(f)
		if err != nil {
			return nil, fmt.Errorf("%s: %q is not a pid", path, f)
		}
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids, nil
}

// limitFile is one control file agentbox writes into a task group and the value the kernel
// reads back. Optional files (present only with swap accounting, or on newer kernels) are
// checked only where they exist.
type limitFile struct {
	key, file, want string
	optional        bool
}

// expectedLimitFiles are the limit files of a task group with these limits.
func expectedLimitFiles(unified bool, memory uint64, cpus float64, pids int64) []limitFile {
	mem := strconv.FormatUint(memory, 10)
	quota := strconv.FormatInt(int64(cpus*100_000), 10)
	p := strconv.FormatInt(pids, 10)
	if unified {
		return []limitFile{
			{"", "memory.max", mem, false},
			{"", "memory.swap.max", "0", true},
			{"", "memory.oom.group", "1", true},
			{"", "cpu.max", quota + " 100000", false},
			{"", "pids.max", p, false},
		}
	}
	return []limitFile{
		{"memory", "memory.limit_in_bytes", mem, false},
		{"memory", "memory.memsw.limit_in_bytes", mem, true},
		{"memory", "memory.swappiness", "0", true},
		{"cpu", "cpu.cfs_period_us", "100000", false},
		{"cpu", "cpu.cfs_quota_us", quota, false},
		{"pids", "pids.max", p, false},
	}
}

// threadsFile lists every thread of a group: "tasks" on v1, "cgroup.threads" on v2.
func threadsFile(unified bool) string {
	if unified {
		return "cgroup.threads"
	}
	return "tasks"
}
