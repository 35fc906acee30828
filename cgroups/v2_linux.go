package cgroups

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// v2Controllers are enabled for task groups on a unified host.
var v2Controllers = []string{"memory", "cpu", "pids"}

// supervisorLeaf is where the supervisor's own processes move when its
// cgroup must hand controllers to children (see setupV2).
const supervisorLeaf = "supervisor"

// v2 is a unified host: one hierarchy, every controller in it.
type v2 struct {
	own         string   // the supervisor's own group, the leaf's and the parent's parent
	parent      string   // own/<parent>
	controllers []string // enabled for the parent's children
	isRoot      bool     // own is the root (or a cgroup namespace's root): nothing moved
}

// setupV2 prepares "<own>/<parent>" so that task groups beneath it get the
// controllers.
//
// cgroup v2 forbids a non-root group to both hold processes and enable
// controllers for its children ("no internal processes"). When the
// supervisor runs in a non-root group that holds processes (a systemd
// service with Delegate=yes), it does what systemd and crun do: move every
// process of its own group into a leaf "<own>/supervisor", then enable the
// controllers in "<own>/cgroup.subtree_control". At the root, or when the
// controllers are already enabled below own, nothing moves. The parent
// itself never holds processes, so enabling there is always allowed.
func setupV2(own, parent string, controllers []string, isRoot bool) (*v2, error) {
	if err := requireControllers(own, controllers); err != nil {
		return nil, err
	}
	missing, err := missingSubtree(own, controllers)
	if err != nil {
		return nil, err
	}
	if len(missing) > 0 && !isRoot {
		if err := evacuate(own); err != nil {
			return nil, err
		}
	}
	if err := enable(own, missing); err != nil {
		return nil, err
	}
	h := &v2{own: own, parent: filepath.Join(own, parent), controllers: controllers, isRoot: isRoot}
	if err := mkdirParent(h.parent); err != nil {
		return nil, err
	}
	return h, enableAll(h.parent, controllers)
}

// ensureParents redoes setupV2 (it is idempotent): another supervisor's Close may have
// undone it between our NewManager and a Create, finding nothing of ours in use then.
func (h *v2) ensureParents() error {
	_, err := setupV2(h.own, filepath.Base(h.parent), h.controllers, h.isRoot)
	return err
}

// release undoes setupV2's move once no process but this one needs it: when own has no
// child but the leaf, and the leaf holds no process but this one, it turns off in own the
// controllers it finds on there, moves this process back into own and removes the leaf.
// At the root nothing was moved, so nothing is undone. Whatever is still in use is left as
// it is (nil error): a parent or group of another supervisor, or a group this package did
// not make.
func (h *v2) release(self int) error {
	leaf := filepath.Join(h.own, supervisorLeaf)
	if h.isRoot || !onlyChild(h.own, supervisorLeaf) {
		return nil
	}
	pids, err := readPids(filepath.Join(leaf, "cgroup.procs"))
	if err != nil || slices.ContainsFunc(pids, func(p int) bool { return p != self }) {
		return err
	}
	on, err := enabledOf(h.own, h.controllers)
	if err != nil {
		return err
	}
	if err := disable(h.own, on); err != nil {
		return ignoreBusy(err)
	}
	if slices.Contains(pids, self) {
		if err := writePid(h.own, self); err != nil {
			return errors.Join(err, enable(h.own, on)) // stay in the leaf, as we were
		}
	}
	return ignoreBusy(unix.Rmdir(leaf)) // a process that joined it meanwhile keeps it
}

// onlyChild reports whether the cgroup dir has exactly one child group, name.
func onlyChild(dir, name string) bool {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	var groups []string
	for _, e := range entries {
		if e.IsDir() {
			groups = append(groups, e.Name())
		}
	}
	return len(groups) == 1 && groups[0] == name
}

// enabledOf lists those of controllers that dir enables for its children.
func enabledOf(dir string, controllers []string) ([]string, error) {
	missing, err := missingSubtree(dir, controllers)
	if err != nil {
		return nil, err
	}
	var on []string
	for _, c := range controllers {
		if !slices.Contains(missing, c) {
			on = append(on, c)
		}
	}
	return on, nil
}

// disable turns controllers off for dir's children in one write.
func disable(dir string, controllers []string) error {
	if len(controllers) == 0 {
		return nil
	}
	return writeFile(filepath.Join(dir, "cgroup.subtree_control"), "-"+strings.Join(controllers, " -"))
}

// requireControllers fails, naming them, if controllers are not available
// in dir (not enabled by its parent, or not delegated to us).
func requireControllers(dir string, controllers []string) error {
	have, err := os.ReadFile(filepath.Join(dir, "cgroup.controllers"))
	if err != nil {
		return fmt.Errorf("read controllers of %s: %w", dir, err)
	}
	var missing []string
	for _, c := range controllers {
		if !slices.Contains(strings.Fields(string(have)), c) {
			missing = append(missing, c)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: %v not in %s/cgroup.controllers (%q)", ErrControllerMissing, missing, dir, strings.TrimSpace(string(have)))
	}
	return nil
}

// missingSubtree lists the controllers not yet enabled for dir's children.
func missingSubtree(dir string, controllers []string) ([]string, error) {
	b, err := os.ReadFile(filepath.Join(dir, "cgroup.subtree_control"))
	if err != nil {
		return nil, fmt.Errorf("read subtree_control of %s: %w", dir, err)
	}
	var missing []string
	for _, c := range controllers {
		if !slices.Contains(strings.Fields(string(b)), c) {
			missing = append(missing, c)
		}
	}
	return missing, nil
}

// enable turns on controllers for dir's children in one write.
func enable(dir string, controllers []string) error {
	if len(controllers) == 0 {
		return nil
	}
	return writeFile(filepath.Join(dir, "cgroup.subtree_control"), "+"+strings.Join(controllers, " +"))
}

// enableAll enables whichever of controllers dir does not have yet.
func enableAll(dir string, controllers []string) error {
	missing, err := missingSubtree(dir, controllers)
	if err != nil {
		return err
	}
	return enable(dir, missing)
}

// evacuate moves every process of own into the leaf own/supervisor. It
// repeats while processes appear (a fork racing the move), a bounded number
// of times.
func evacuate(own string) error {
	leaf := filepath.Join(own, supervisorLeaf)
	if err := mkdirParent(leaf); err != nil {
		return err
	}
	for range 10 {
		pids, err := readPids(filepath.Join(own, "cgroup.procs"))
		if err != nil || len(pids) == 0 {
			return err
		}
		if err := movePids(leaf, pids); err != nil {
			return err
		}
	}
	return fmt.Errorf("move processes of %s into %s: still not empty after 10 passes", own, leaf)
}

// movePids writes each pid into dir; a pid that exited meanwhile is skipped.
func movePids(dir string, pids []int) error {
	for _, pid := range pids {
		if err := writePid(dir, pid); err != nil && !errors.Is(err, unix.ESRCH) {
			return err
		}
	}
	return nil
}

func (h *v2) mode() Mode { return Unified }

func (h *v2) parentDirs() []string { return []string{h.parent} }

func (h *v2) groupDirs(name string) []string { return []string{h.dir(name)} }

func (h *v2) dir(name string) string { return filepath.Join(h.parent, name) }

// setLimits writes the limits (cgroup-v2.rst: memory.max, memory.swap.max,
// cpu.max "$MAX $PERIOD", pids.max) and memory.oom.group=1, so that an OOM
// kill takes the whole task down rather than leaving a crippled half.
func (h *v2) setLimits(name string, l Limits) error {
	steps := []struct {
		file, value string
		want        bool // write it at all
		optional    bool // a missing file (older kernel, no swap) is fine
	}{
		{"memory.max", strconv.FormatInt(l.MemoryBytes, 10), l.MemoryBytes > 0, false},
		{"memory.swap.max", "0", true, true},
		{"memory.oom.group", "1", true, true},
		{"cpu.max", fmt.Sprintf("%d %d", l.cpuQuota().Microseconds(), cpuPeriod.Microseconds()), l.CPUs > 0, false},
		{"pids.max", strconv.FormatInt(l.Pids, 10), l.Pids > 0, false},
	}
	for _, s := range steps {
		write := writeFile
		if s.optional {
			write = writeIfExists
		}
		if !s.want {
			continue
		}
		if err := write(filepath.Join(h.dir(name), s.file), s.value); err != nil {
			return err
		}
	}
	return nil
}

// stats reads cpu.stat usage_usec, memory.peak (5.19+; else memory.current)
// and memory.events oom_kill. Memory files are absent only when the memory
// controller is not enabled, which NewManager does not allow; they read as 0.
func (h *v2) stats(name string) (Stats, error) {
	d := h.dir(name)
	usec, err := readKey(filepath.Join(d, "cpu.stat"), "usage_usec")
	if err != nil {
		return Stats{}, err
	}
	peak, err := readFirst(filepath.Join(d, "memory.peak"), filepath.Join(d, "memory.current"))
	if err != nil {
		return Stats{}, err
	}
	ooms, err := readKey(filepath.Join(d, "memory.events"), "oom_kill")
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return Stats{}, err
	}
	hits, err := readKey(filepath.Join(d, "pids.events"), "max")
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return Stats{}, err
	}
	return Stats{CPUUsage: time.Duration(usec) * time.Microsecond, PeakMemoryBytes: peak, OOMKills: ooms, PidsLimitHits: hits}, nil
}

// readFirst reads the first of paths that exists; none existing reads as 0.
func readFirst(paths ...string) (uint64, error) {
	for _, p := range paths {
		v, err := readUint(p)
		if !errors.Is(err, fs.ErrNotExist) {
			return v, err
		}
	}
	return 0, nil
}

// openDir opens the group O_PATH|O_DIRECTORY: clone3 takes any fd of the
// directory (fdget_raw), and an O_PATH fd grants nothing else to whoever
// might inherit it.
func (h *v2) openDir(name string) (*os.File, error) {
	d := h.dir(name)
	fd, err := unix.Open(d, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open cgroup %s: %w", d, err)
	}
	return os.NewFile(uintptr(fd), d), nil
}

// startKill writes cgroup.kill (5.14+), which kills the whole subtree
// atomically, racing no fork. Older kernels: freeze (cgroup.freeze, 5.2+),
// SIGKILL what is listed, thaw, and let the caller's loop finish the job.
func (h *v2) startKill(name string) (bool, error) {
	d := h.dir(name)
	if _, err := os.Stat(d); errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if exists(filepath.Join(d, "cgroup.kill")) {
		return false, writeFile(filepath.Join(d, "cgroup.kill"), "1")
	}
	return true, freezeAndKill(d)
}

// freezeAndKill signals every process while the group is frozen, so none
// can fork a child the signal misses; a frozen task still dies of SIGKILL.
func freezeAndKill(d string) error {
	freeze := filepath.Join(d, "cgroup.freeze")
	if err := writeIfExists(freeze, "1"); err != nil {
		return err
	}
	pids, err := procsIn([]string{d})
	if err == nil {
		err = sigkillAll(pids)
	}
	return errors.Join(err, writeIfExists(freeze, "0"))
}
