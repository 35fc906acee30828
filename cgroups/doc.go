// Package cgroups gives every agentbox task its own control group, on cgroup v1
// (legacy or hybrid hosts, controllers on v1) and cgroup v2 (unified hosts),
// behind one small API in the manner of gVisor's runsc/cgroup.
//
// All groups live beneath the supervisor's own cgroup, in a parent named
// "agentbox", so the supervisor only ever touches the part of the tree that
// was delegated to it (systemd: Delegate=yes). A task group is named
// "<supervisorPID>-<name>"; the PID prefix lets a restarted supervisor sweep
// the groups a dead one left behind without touching those of a live one.
//
// On cgroup v2 a non-root group may not both hold processes and enable
// controllers for its children. When the supervisor lives in such a group
// (a systemd service with Delegate=yes), NewManager does what systemd and
// crun do: it moves the group's processes into a leaf "<own>/supervisor",
// then enables +memory +cpu +pids in "<own>/cgroup.subtree_control" and in
// "<own>/agentbox/cgroup.subtree_control". At the root nothing moves.
// Task groups get memory.oom.group=1 and memory.swap.max=0.
//
// Manager.Close undoes all of that as far as no one uses it any more: it
// removes the parent when no group is left in it, and on v2 moves the
// supervisor back out of the leaf and turns the controllers off again when it
// is alone there; a Create after that (another Manager's, or another
// supervisor's) makes the parent again. What a supervisor killed outright leaves is
// swept by the next one: its groups at NewManager, an empty parent or leaf at
// Close.
//
// The hierarchy mode is detected once, with containerd/cgroups' Mode. The
// controller files themselves are written directly (as gVisor does) rather
// than through containerd's cgroup1/cgroup2 managers: agentbox needs a
// handful of files, and those managers pull in dbus, systemd, eBPF and
// protobuf dependencies that a sandbox supervisor has no use for.
package cgroups
