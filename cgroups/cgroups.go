package cgroups

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Mode is the cgroup hierarchy agentbox drives on this host.
type Mode int

const (
	// Legacy means controllers are on cgroup v1: a pure v1 host, or a hybrid
	// host whose cgroup2 mount carries no controllers.
	Legacy Mode = iota + 1
	// Unified means cgroup v2 only.
	Unified
)

// String names the mode the way operators talk about it: "v1" or "v2".
func (m Mode) String() string {
	switch m {
	case Legacy:
		return "v1"
	case Unified:
		return "v2"
	default:
		return "unknown(" + strconv.Itoa(int(m)) + ")"
	}
}

// Limits are the per-task resource limits. A zero field means "no limit".
type Limits struct {
	// MemoryBytes caps memory; swap is turned off for the group so the cap
	// cannot be evaded by swapping (memsw = memory on v1 where the file
	// exists, memory.swap.max = 0 on v2).
	MemoryBytes int64
	// CPUs is the CPU quota in cores: quota = CPUs × 100ms per 100ms period.
	CPUs float64
	// Pids caps the number of tasks (processes and threads) in the group.
	Pids int64
}

// Stats is what the supervisor needs from a group for the task's verdict and
// usage report.
type Stats struct {
	// CPUUsage is the CPU time consumed by all processes of the group.
	CPUUsage time.Duration
	// PeakMemoryBytes is the high-water mark of the group's memory use
	// (v2 kernels before 5.19 lack memory.peak: there it is current use).
	PeakMemoryBytes uint64
	// OOMKills counts processes of the group killed by the OOM killer.
	OOMKills uint64
	// PidsLimitHits counts forks and thread creations refused by pids.max (pids.events
	// "max"): a runtime that dies for want of a thread is told apart from our own failure.
	PidsLimitHits uint64
}

const (
	// cpuPeriod is the CFS period; 100ms is the kernel default.
	cpuPeriod = 100 * time.Millisecond
	// minCPUQuota is the smallest quota the kernel accepts (1ms).
	minCPUQuota = time.Millisecond
	// parentName is the directory holding every agentbox group beneath the
	// supervisor's own cgroup.
	parentName = "agentbox"
	// maxNameLen keeps "<pid>-<name>" well inside NAME_MAX.
	maxNameLen = 200
)

var validName = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)

// validate reports the first limit the kernel would refuse, naming it and
// its value, so a caller's bad config surfaces at Create, not as EINVAL.
func (l Limits) validate() error {
	switch {
	case l.MemoryBytes < 0:
		return fmt.Errorf("%w: MemoryBytes %d is negative", ErrInvalidLimits, l.MemoryBytes)
	case l.Pids < 0:
		return fmt.Errorf("%w: Pids %d is negative", ErrInvalidLimits, l.Pids)
	case math.IsNaN(l.CPUs) || math.IsInf(l.CPUs, 0):
		return fmt.Errorf("%w: CPUs %v is not a number", ErrInvalidLimits, l.CPUs)
	case l.CPUs < 0:
		return fmt.Errorf("%w: CPUs %v is negative", ErrInvalidLimits, l.CPUs)
	case l.CPUs > 0 && l.cpuQuota() < minCPUQuota:
		return fmt.Errorf("%w: CPUs %v gives a quota of %v, below the kernel minimum %v",
			ErrInvalidLimits, l.CPUs, l.cpuQuota(), minCPUQuota)
	case l.CPUs > 1<<20:
		return fmt.Errorf("%w: CPUs %v is absurdly large", ErrInvalidLimits, l.CPUs)
	}
	return nil
}

// cpuQuota is the CFS quota per cpuPeriod for l.CPUs.
func (l Limits) cpuQuota() time.Duration {
	return time.Duration(l.CPUs * float64(cpuPeriod))
}

// validateName refuses names that could escape the parent directory or
// collide with the "<pid>-" prefix parsing.
func validateName(name string) error {
	if len(name) == 0 || len(name) > maxNameLen || !validName.MatchString(name) || name == "." || name == ".." {
		return fmt.Errorf("%w: %q (want 1-%d of [A-Za-z0-9._-])", ErrInvalidName, name, maxNameLen)
	}
	return nil
}

// groupName is the directory name of a task group: "<supervisorPID>-<name>".
func groupName(supervisorPID int, name string) string {
	return strconv.Itoa(supervisorPID) + "-" + name
}

// ownerPID parses the supervisor PID prefix of a group directory name; ok is
// false for names agentbox did not make.
func ownerPID(dirName string) (pid int, ok bool) {
	prefix, _, found := strings.Cut(dirName, "-")
	if !found {
		return 0, false
	}
	pid, err := strconv.Atoi(prefix)
	if err != nil || pid <= 0 {
		return 0, false
	}
	return pid, true
}
