package cgroups

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"github.com/containerd/cgroups/v3"
)

const (
	// unifiedMount is where a unified (v2-only) host mounts cgroup2.
	unifiedMount      = "/sys/fs/cgroup"
	procSelfCgroup    = "/proc/self/cgroup"
	procSelfMountinfo = "/proc/self/mountinfo"
)

// Manager owns the agentbox parent group beneath this process's own cgroup
// and creates one Group per task inside it. It is safe for concurrent use:
// it holds no mutable state after NewManager.
type Manager struct {
	h   hierarchy
	pid int // the supervisor PID that prefixes every group name
}

// NewManager detects the hierarchy once, finds this process's own cgroup
// (per controller on v1, where they differ) and creates "<own>/agentbox".
// On v2 it may first move this process into "<own>/supervisor"; see setupV2.
func NewManager() (*Manager, error) {
	return newManager(parentName)
}

// newManager is NewManager with the parent's name; tests use their own.
func newManager(parent string) (*Manager, error) {
	treeMu.Lock()
	defer treeMu.Unlock()
	h, err := detect(parent)
	if err != nil {
		return nil, err
	}
	return &Manager{h: h, pid: os.Getpid()}, nil
}

// detect builds the hierarchy for the host's mode and creates the parent.
func detect(parent string) (hierarchy, error) {
	legacy, unified, err := cgroups.ParseCgroupFileUnified(procSelfCgroup)
	if err != nil {
		return nil, fmt.Errorf("read own cgroup from %s: %w", procSelfCgroup, err)
	}
	switch mode := cgroups.Mode(); mode {
	case cgroups.Unified:
		own := filepath.Join(unifiedMount, ownUnified(unified))
		// The root cgroup alone has no cgroup.type; this also holds inside
		// a cgroup namespace, whose "/" is not the real root.
		return setupV2(own, parent, v2Controllers, !exists(filepath.Join(own, "cgroup.type")))
	case cgroups.Legacy, cgroups.Hybrid:
		return setupV1(legacy, parent)
	default:
		return nil, fmt.Errorf("%w: containerd/cgroups mode %d", ErrNoCgroups, mode)
	}
}

// ownUnified is the supervisor's own v2 group. Once setupV2 has moved this
// process into "<own>/supervisor", /proc/self/cgroup names that leaf; the
// group agentbox manages is still its parent, so a second NewManager in the
// same process must not treat the leaf as its own group.
func ownUnified(path string) string {
	if filepath.Base(path) == supervisorLeaf {
		return filepath.Dir(path)
	}
	return path
}

// setupV1 finds the v1 mounts and creates the parent in every hierarchy.
func setupV1(own map[string]string, parent string) (*v1, error) {
	mounts, err := v1Mounts(procSelfMountinfo)
	if err != nil {
		return nil, err
	}
	h, err := newV1(mounts, own, parent)
	if err != nil {
		return nil, err
	}
	return h, h.ensureParents()
}

// Mode reports the hierarchy in use: Legacy (v1 or hybrid) or Unified (v2).
func (m *Manager) Mode() Mode { return m.h.mode() }

// Create makes the group "<supervisorPID>-<name>" in every hierarchy and
// writes its limits. A group of that name must not exist yet. On any
// failure nothing is left behind. A parent that a Close removed meanwhile
// (it found the parent empty) is made again, as NewManager made it.
func (m *Manager) Create(name string, l Limits) (*Group, error) {
	if err := validateName(name); err != nil {
		return nil, err
	}
	if err := l.validate(); err != nil {
		return nil, fmt.Errorf("create cgroup %q: %w", name, err)
	}
	treeMu.RLock()
	defer treeMu.RUnlock()
	g := m.group(groupName(m.pid, name))
	err := g.mkdir()
	for try := 0; errors.Is(err, fs.ErrNotExist) && try < 3; try++ {
		if err = m.h.ensureParents(); err == nil {
			err = g.mkdir()
		}
	}
	if err != nil {
		return nil, err
	}
	if err := m.h.setLimits(g.name, l); err != nil {
		return nil, errors.Join(fmt.Errorf("set limits %+v on cgroup %s: %w", l, g.name, err), g.Delete())
	}
	return g, nil
}

// Sweep removes the groups a dead supervisor left behind: those whose name
// starts with the PID of a process that no longer exists. Their processes
// are killed first. Groups of live PIDs (this one, or another running
// supervisor) and names agentbox did not make are left alone. A reused PID
// hides its dead predecessor's groups until that PID, too, is gone.
func (m *Manager) Sweep() (removed []string, err error) {
	names, err := m.children()
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, n := range names {
		pid, ok := ownerPID(n)
		if !ok || pid == m.pid || alive(pid) {
			continue
		}
		if err := m.group(n).Delete(); err != nil {
			errs = append(errs, fmt.Errorf("sweep: %w", err))
			continue
		}
		removed = append(removed, n)
	}
	return removed, errors.Join(errs...)
}

// Owned lists the groups this supervisor has created and not yet deleted: after every
// task has ended it must be empty (the leak check of the sandbox and load suites).
func (m *Manager) Owned() ([]string, error) {
	names, err := m.children()
	if err != nil {
		return nil, err
	}
	var own []string
	for _, n := range names {
		if pid, ok := ownerPID(n); ok && pid == m.pid {
			own = append(own, n)
		}
	}
	return own, nil
}

// children lists the group names in the parent of every hierarchy.
func (m *Manager) children() ([]string, error) {
	var names []string
	for _, p := range m.h.parentDirs() {
		entries, err := os.ReadDir(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue // removed by a Close: no groups
		}
		if err != nil {
			return nil, fmt.Errorf("list cgroup parent %s: %w", p, err)
		}
		for _, e := range entries {
			if e.IsDir() {
				names = append(names, e.Name())
			}
		}
	}
	slices.Sort(names)
	return slices.Compact(names), nil
}

// group is the handle of a group by its full name; it may not exist.
func (m *Manager) group(name string) *Group {
	return &Group{name: name, h: m.h}
}
