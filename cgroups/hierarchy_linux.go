package cgroups

import "os"

// hierarchy is what differs between cgroup v1 and v2, in the manner of
// gVisor's runsc/cgroup: the Manager and Group do the common work (naming,
// validation, process lists, kill loop, removal) over the directories a
// hierarchy names.
type hierarchy interface {
	// mode says which hierarchy this is.
	mode() Mode
	// parentDirs is the agentbox parent in every distinct hierarchy.
	parentDirs() []string
	// groupDirs is the named group in every distinct hierarchy.
	groupDirs(name string) []string
	// setLimits writes l into a group: a fresh one, or one whose limits change
	// (a pooled child's, at its task's handoff).
	setLimits(name string, l Limits) error
	// stats reads the group's usage counters.
	stats(name string) (Stats, error)
	// openDir opens the group for CLONE_INTO_CGROUP (v2 only).
	openDir(name string) (*os.File, error)
	// startKill begins killing every process of the group; resignal says
	// whether the caller must keep sending SIGKILL to stragglers (true
	// when the kernel has no cgroup.kill to do it atomically).
	startKill(name string) (resignal bool, err error)
	// ensureParents (re)creates the parents, as NewManager did.
	ensureParents() error
	// release undoes what NewManager did beyond the parents (v2: the move
	// into the supervisor leaf) once only self still needs it.
	release(self int) error
}
