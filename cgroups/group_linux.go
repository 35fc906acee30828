package cgroups

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"time"

	"golang.org/x/sys/unix"
)

// killTimeout bounds how long Kill waits for a group to empty.
const killTimeout = 5 * time.Second

// Group is one task's cgroup, present in every hierarchy the Manager
// drives. Its methods may be called concurrently.
type Group struct {
	name string
	h    hierarchy
}

// Name is the group's directory name, "<supervisorPID>-<name>".
func (g *Group) Name() string { return g.name }

// mkdir creates the group in every hierarchy, undoing its own work (and
// only its own: an existing group belongs to someone) if one fails.
func (g *Group) mkdir() error {
	var made []string
	for _, d := range g.h.groupDirs(g.name) {
		if err := mkdirGroup(d); err != nil {
			for _, m := range made {
				err = errors.Join(err, rmdirRetry(m, time.Now().Add(time.Second)))
			}
			return err
		}
		made = append(made, d)
	}
	return nil
}

// AddProc moves pid into the group in every hierarchy. On v1 this is how
// the child gets its limits (it waits on a sync pipe until this returns);
// on v2 the child is normally born inside via OpenDir and CLONE_INTO_CGROUP.
func (g *Group) AddProc(pid int) error {
	for _, d := range g.h.groupDirs(g.name) {
		if err := writePid(d, pid); err != nil {
			return fmt.Errorf("add pid %d to cgroup %s: %w", pid, g.name, err)
		}
	}
	return nil
}

// OpenDir opens the group directory for SysProcAttr.CgroupFD, so the child
// is born inside its limits (CLONE_INTO_CGROUP, Linux 5.7+). The caller
// closes it. On v1 it returns ErrNotUnified.
func (g *Group) OpenDir() (*os.File, error) { return g.h.openDir(g.name) }

// SetLimits replaces the group's limits, which may rise or fall: a warm
// pool's child waits under the pool's limits and takes its task's before the
// task is handed over. Fields left zero keep their current value.
func (g *Group) SetLimits(l Limits) error {
	if err := l.validate(); err != nil {
		return fmt.Errorf("set limits of cgroup %s: %w", g.name, err)
	}
	if err := g.h.setLimits(g.name, l); err != nil {
		return fmt.Errorf("set limits %+v on cgroup %s: %w", l, g.name, err)
	}
	return nil
}

// Stats reads CPU usage, peak memory and OOM kills. Read it before Delete:
// the counters go with the group.
func (g *Group) Stats() (Stats, error) {
	s, err := g.h.stats(g.name)
	if err != nil {
		return Stats{}, fmt.Errorf("stats of cgroup %s: %w", g.name, err)
	}
	return s, nil
}

// Procs lists the processes in the group (and any group beneath it), sorted.
func (g *Group) Procs() ([]int, error) { return procsIn(g.h.groupDirs(g.name)) }

// Kill kills every process in the group and waits until it is empty, for at
// most 5s; the error then names the pids left. A missing group is empty.
func (g *Group) Kill() error { return g.kill(killTimeout) }

// kill is Kill with its deadline.
func (g *Group) kill(timeout time.Duration) error {
	resignal, err := g.h.startKill(g.name)
	if err != nil {
		return fmt.Errorf("kill cgroup %s: %w", g.name, err)
	}
	deadline := time.Now().Add(timeout)
	for {
		pids, err := g.Procs()
		if err != nil || len(pids) == 0 {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%w: cgroup %s still holds pids %v after %v", ErrKillTimeout, g.name, pids, timeout)
		}
		if resignal {
			if err := g.signalMembers(pids); err != nil {
				return fmt.Errorf("kill cgroup %s: %w", g.name, err)
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// signalMembers sends SIGKILL to those of pids still in the group, through
// pidfds: a pid is pinned first, then checked to still be a member, so a
// pid that exited and was reused by a stranger is never signalled.
func (g *Group) signalMembers(pids []int) error {
	fds := map[int]int{}
	defer closeAll(fds)
	for _, pid := range pids {
		fd, err := unix.PidfdOpen(pid, 0)
		if errors.Is(err, unix.ENOSYS) {
			return sigkillAll(pids) // before Linux 5.3: best effort
		}
		if err == nil {
			fds[pid] = fd
		}
	}
	members, err := g.Procs()
	if err != nil {
		return err
	}
	var errs []error
	for pid, fd := range fds {
		if !slices.Contains(members, pid) {
			continue
		}
		if err := unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0); err != nil && !errors.Is(err, unix.ESRCH) {
			errs = append(errs, fmt.Errorf("kill pid %d: %w", pid, err))
		}
	}
	return errors.Join(errs...)
}

// closeAll closes the pidfds of signalMembers.
func closeAll(fds map[int]int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}

// Delete kills the group's processes and removes the group in every
// hierarchy. Deleting a deleted group succeeds.
func (g *Group) Delete() error {
	if g.removeEmpty() {
		return nil
	}
	if err := g.Kill(); err != nil {
		return err
	}
	deadline := time.Now().Add(killTimeout)
	var errs []error
	for _, d := range g.h.groupDirs(g.name) {
		errs = append(errs, rmdirTree(d, deadline))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("delete cgroup %s: %w", g.name, err)
	}
	return nil
}

// removeEmpty removes the group where it is already empty, as it is after the
// supervisor's own Kill: one rmdir per hierarchy, without listing anything.
// The kernel refuses rmdir of a group that holds a process or a child group,
// so this never removes one that does; false sends Delete the long way.
func (g *Group) removeEmpty() bool {
	for _, d := range g.h.groupDirs(g.name) {
		if err := unix.Rmdir(d); err != nil && !errors.Is(err, unix.ENOENT) {
			return false
		}
	}
	return true
}
