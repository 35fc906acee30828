package cgroups

import "errors"

// Sentinel errors; callers check them with errors.Is.
var (
	// ErrUnsupported is returned on operating systems without cgroups.
	ErrUnsupported = errors.New("cgroups: unsupported on this OS")
	// ErrNoCgroups is returned when no usable cgroup hierarchy is mounted.
	ErrNoCgroups = errors.New("cgroups: no cgroup hierarchy mounted")
	// ErrNotUnified is returned by operations that exist only on cgroup v2,
	// such as OpenDir for CLONE_INTO_CGROUP.
	ErrNotUnified = errors.New("cgroups: operation needs cgroup v2 (unified)")
	// ErrInvalidLimits is returned by Create for limits the kernel would
	// refuse or misread (negative values, a CPU quota below 1ms).
	ErrInvalidLimits = errors.New("cgroups: invalid limits")
	// ErrInvalidName is returned for a group name that is empty, too long or
	// holds characters other than letters, digits, '.', '_' and '-'.
	ErrInvalidName = errors.New("cgroups: invalid group name")
	// ErrControllerMissing is returned when a controller agentbox needs
	// (memory, cpu, cpuacct, pids) is not available to this process.
	ErrControllerMissing = errors.New("cgroups: controller missing")
	// ErrKillTimeout is returned when a group still holds processes after
	// Kill has tried for its whole deadline.
	ErrKillTimeout = errors.New("cgroups: processes left after kill")
)
