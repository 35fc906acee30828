package cgroups

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// v1Controllers are the v1 controllers agentbox drives; all others (cpuset,
// freezer, devices…) are left alone.
var v1Controllers = []string{"memory", "cpu", "cpuacct", "pids"}

// v1 is a legacy or hybrid host: one hierarchy per controller, and each
// controller's agentbox parent lives beneath this process's own group in
// that controller (they differ: e.g. memory:/process_api/x but cpu:/).
type v1 struct {
	parents map[string]string // controller → parent directory
}

// newV1 finds each controller's own group and mount and names the parent.
func newV1(mounts map[string]mount, own map[string]string, parent string) (*v1, error) {
	h := &v1{parents: map[string]string{}}
	for _, c := range v1Controllers {
		m, ok := mounts[c]
		if !ok {
			return nil, fmt.Errorf("%w: v1 controller %q is not mounted", ErrControllerMissing, c)
		}
		p, ok := own[c]
		if !ok {
			return nil, fmt.Errorf("%w: v1 controller %q has no entry in /proc/self/cgroup", ErrControllerMissing, c)
		}
		h.parents[c] = filepath.Join(m.dirFor(p), parent)
	}
	return h, nil
}

func (h *v1) mode() Mode { return Legacy }

// ensureParents creates the parent in every hierarchy where it is missing: another
// supervisor's Close may have removed it, finding it empty.
func (h *v1) ensureParents() error {
	for _, d := range h.parentDirs() {
		if err := mkdirParent(d); err != nil {
			return err
		}
	}
	return nil
}

// release has nothing to undo on v1: nothing moved, and Close removes the parents.
func (h *v1) release(int) error { return nil }

func (h *v1) parentDirs() []string { return sortedUnique(h.parents) }

func (h *v1) groupDirs(name string) []string {
	var dirs []string
	for _, p := range h.parentDirs() {
		dirs = append(dirs, filepath.Join(p, name))
	}
	return dirs
}

// file is the path of a control file of the group in controller c.
func (h *v1) file(c, name, file string) string {
	return filepath.Join(h.parents[c], name, file)
}

func (h *v1) setLimits(name string, l Limits) error {
	if err := h.setMemory(name, l.MemoryBytes); err != nil {
		return err
	}
	if err := h.setCPU(name, l.CPUs, l.cpuQuota()); err != nil {
		return err
	}
	if l.Pids > 0 {
		return writeFile(h.file("pids", name, "pids.max"), strconv.FormatInt(l.Pids, 10))
	}
	return nil
}

// setMemory sets the limit and turns swap off: memsw (memory+swap) equal to
// the limit where swap accounting exists, else swappiness 0 as the best
// v1 offers. memsw may never be below limit_in_bytes, so a limit that falls
// writes limit_in_bytes first and one that rises writes memsw first.
func (h *v1) setMemory(name string, limit int64) error {
	if err := writeIfExists(h.file("memory", name, "memory.swappiness"), "0"); err != nil {
		return err
	}
	if limit == 0 {
		return nil
	}
	v := strconv.FormatInt(limit, 10)
	memLimit, memsw := h.file("memory", name, "memory.limit_in_bytes"), h.file("memory", name, "memory.memsw.limit_in_bytes")
	if cur, err := readUint(memLimit); err == nil && uint64(limit) > cur {
		if err := writeIfExists(memsw, v); err != nil {
			return err
		}
		return writeFile(memLimit, v)
	}
	if err := writeFile(memLimit, v); err != nil {
		return err
	}
	return writeIfExists(memsw, v)
}

// setCPU writes the CFS period, then the quota (the kernel checks the quota
// against the period already set).
func (h *v1) setCPU(name string, cpus float64, quota time.Duration) error {
	if cpus == 0 {
		return nil
	}
	if err := writeFile(h.file("cpu", name, "cpu.cfs_period_us"), strconv.FormatInt(cpuPeriod.Microseconds(), 10)); err != nil {
		return err
	}
	return writeFile(h.file("cpu", name, "cpu.cfs_quota_us"), strconv.FormatInt(quota.Microseconds(), 10))
}

func (h *v1) stats(name string) (Stats, error) {
	usage, err := readUint(h.file("cpuacct", name, "cpuacct.usage"))
	if err != nil {
		return Stats{}, err
	}
	peak, err := readUint(h.file("memory", name, "memory.max_usage_in_bytes"))
	if err != nil {
		return Stats{}, err
	}
	ooms, err := readKey(h.file("memory", name, "memory.oom_control"), "oom_kill")
	if err != nil {
		return Stats{}, err
	}
	hits, err := readKey(h.file("pids", name, "pids.events"), "max")
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return Stats{}, err
	}
	return Stats{CPUUsage: time.Duration(usage), PeakMemoryBytes: peak, OOMKills: ooms, PidsLimitHits: hits}, nil
}

func (h *v1) openDir(name string) (*os.File, error) {
	return nil, fmt.Errorf("open cgroup %s for CLONE_INTO_CGROUP: %w", name, ErrNotUnified)
}

// startKill on v1 has no atomic kill; the freezer controller is not one
// agentbox drives, so the caller's SIGKILL loop does the work. That loop
// converges: pids.max bounds how many processes can race it, and a process
// with SIGKILL pending cannot fork.
func (h *v1) startKill(string) (bool, error) { return true, nil }
