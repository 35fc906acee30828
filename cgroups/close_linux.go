package cgroups

import (
	"errors"
	"fmt"
	"sync"

	"golang.org/x/sys/unix"
)

// treeMu orders, within this process, the changes to the tree above the task groups: NewManager
// and Close take it exclusively, Create shared, so that no Create of this process finds a
// parent half made or half undone. Other processes are handled by the tree itself: rmdir
// refuses a parent that holds a group, and Create makes a missing parent again.
var treeMu sync.RWMutex

// Close undoes what NewManager did to the host, as far as nothing else needs it. It sweeps
// the groups of dead supervisors and removes the parent if no group is left in it; then, on
// v2, it undoes the move into "<own>/supervisor" if this process is the only one left there
// and own has no other child (see v2.release). Groups in use, this process's or another
// live supervisor's, are never touched and keep the parent: Close does not affect running
// tasks. Another Manager of this process, or another supervisor, that still runs finds the
// parent made again by its next Create. Closing twice does nothing more.
func (m *Manager) Close() error {
	treeMu.Lock()
	defer treeMu.Unlock()
	if _, err := m.Sweep(); err != nil {
		return fmt.Errorf("close: %w", err)
	}
	for _, p := range m.h.parentDirs() {
		if err := unix.Rmdir(p); errors.Is(err, unix.EBUSY) || errors.Is(err, unix.ENOTEMPTY) {
			return nil // a group is left: everything above it stays
		} else if err != nil && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("close: remove cgroup parent %s: %w", p, err)
		}
	}
	if err := m.h.release(m.pid); err != nil {
		return fmt.Errorf("close: undo the move into %s: %w", supervisorLeaf, err)
	}
	return nil
}

// ignoreBusy treats "in use" and "already gone" as done: a cgroup that holds processes or
// children refuses rmdir (EBUSY; ENOTEMPTY on some kernels), and so does a controller that
// a child still uses when asked to turn off.
func ignoreBusy(err error) error {
	if errors.Is(err, unix.EBUSY) || errors.Is(err, unix.ENOTEMPTY) || errors.Is(err, unix.ENOENT) {
		return nil
	}
	return err
}
