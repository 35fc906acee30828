package sandbox

import (
	"fmt"
	"io"
	"runtime"
	"time"

	"github.com/agentbox/agentbox/internal/units"
	"github.com/agentbox/agentbox/outcome"
	"github.com/agentbox/agentbox/verdict"
	"github.com/agentbox/agentbox/wasm"
)

// Defaults applied by Spec.withDefaults where a limit is left zero.
const (
	DefaultMemory          = 256 << 20
	DefaultCPUs            = 1.0
	DefaultPids            = 64
	DefaultTimeout         = 30 * time.Second
	DefaultOutputLimit     = 1 << 20
	DefaultClockResolution = time.Millisecond
	// DefaultFileSize caps any one file the guest writes under a --dir preopen (RLIMIT_FSIZE).
	DefaultFileSize = 64 << 20
	// minMemory is the least a task can run in: the child's Go runtime and wazero need about
	// 20 MiB before the guest's own memory.
	minMemory = 32 << 20
)

// Limits bounds one task. Zero fields take the package defaults.
type Limits struct {
	MemoryBytes     uint64        `json:"memory_bytes"`    // whole task: runtime + compiled code + linear memory (cgroup)
	CPUs            float64       `json:"cpus"`            // cpu quota in cores
	Pids            int64         `json:"pids"`            // pids.max: threads and processes of the task
	Timeout         time.Duration `json:"timeout_ns"`      // wall clock, from spawn to verdict
	CPUTime         time.Duration `json:"cpu_time_ns"`     // total CPU time; 0 = no limit
	OutputBytes     uint64        `json:"output_bytes"`    // each of stdout and stderr
	FileSizeBytes   uint64        `json:"file_size_bytes"` // RLIMIT_FSIZE for writes under preopens
	ClockResolution time.Duration `json:"clock_resolution_ns"`
}

// Dir is a host directory offered to the guest as a WASI preopen.
type Dir struct {
	HostPath  string `json:"host_path"`
	GuestPath string `json:"guest_path"`
	ReadOnly  bool   `json:"read_only"`
}

// Spec is one task: the module, what the guest sees, and its limits.
type Spec struct {
	Module []byte   // the .wasm bytes
	Args   []string // argv; Args[0] is the program name the guest sees ("main.wasm" if empty)
	Env    []string // KEY=VALUE; the host environment never reaches the guest
	Dirs   []Dir
	Stdin  io.Reader // nil: empty stdin
	// Stdout and Stderr, when set, receive the guest's output as it is written (up to the
	// limit); Result carries a capped copy either way.
	Stdout, Stderr io.Writer
	Limits         Limits
}

// Usage is what the task consumed; one type with the verdict JSON the CLI and the daemon
// print, so the two cannot drift.
type Usage = verdict.Usage

// Result is the verdict on one task.
type Result struct {
	Outcome         outcome.Outcome `json:"outcome"`
	Message         string          `json:"message"`
	ExitCode        uint32          `json:"exit_code"`
	Stdout          []byte          `json:"-"`
	Stderr          []byte          `json:"-"`
	StdoutTruncated bool            `json:"stdout_truncated"`
	StderrTruncated bool            `json:"stderr_truncated"`
	Usage           Usage           `json:"usage"`
	Limits          Limits          `json:"limits"`
	// Warnings are problems of ours that did not change the verdict (e.g. an unusable
	// compile cache: the task ran without it).
	Warnings []string `json:"warnings,omitempty"`
	// Posture is the best-effort hardening of the sandbox child whose run decided the
	// verdict (the sandboxed compile's, for a module it refused), present once that child's
	// stage one finished its setup; nil when the sandbox failed before that, or a kill came
	// during stage one.
	Posture *Posture `json:"posture,omitempty"`
}

// Posture is the best-effort hardening of one sandbox child, as its stage one found it just
// before the exec into the guest's process, so nothing the guest does can change it: the
// verdict's own type, with the speculation words below.
type Posture = verdict.Posture

// The words of Posture's speculation fields.
const (
	SpeculationNotAffected      = "not affected"          // the kernel deems the CPU not affected
	SpeculationDisabledForTask  = "disabled for the task" // what stage one asks for
	SpeculationDisabledHostWide = "disabled host-wide"    // the kernel's boot policy
	SpeculationEnabled          = "enabled"               // no mitigation: the guest may use it
)

// Exited reports whether the guest itself chose its end (returned from _start or called
// proc_exit), so that ExitCode is the guest's own.
func (r Result) Exited() bool { return r.Outcome == outcome.OK || r.Outcome == outcome.Exit }

// withDefaults fills zero limits with the package defaults.
func (l Limits) withDefaults() Limits {
	if l.MemoryBytes == 0 {
		l.MemoryBytes = DefaultMemory
	}
	if l.CPUs == 0 {
		l.CPUs = DefaultCPUs
	}
	if l.Pids == 0 {
		l.Pids = DefaultPids
	}
	if l.Timeout == 0 {
		l.Timeout = DefaultTimeout
	}
	if l.OutputBytes == 0 {
		l.OutputBytes = DefaultOutputLimit
	}
	if l.FileSizeBytes == 0 {
		l.FileSizeBytes = DefaultFileSize
	}
	if l.ClockResolution == 0 {
		l.ClockResolution = DefaultClockResolution
	}
	return l
}

// validate refuses limits the sandbox cannot honour, naming the limit and the value.
func (l Limits) validate() error {
	switch {
	case l.MemoryBytes < minMemory:
		return fmt.Errorf("%w: memory %s is below the %s the runtime needs", ErrBadLimit, units.FormatSize(l.MemoryBytes), units.FormatSize(minMemory))
	case l.CPUs < 0.01:
		return fmt.Errorf("%w: cpus %g is below 0.01", ErrBadLimit, l.CPUs)
	case l.CPUs > float64(runtime.NumCPU()):
		return fmt.Errorf("%w: cpus %g is more than the %d CPUs this host gives us", ErrBadLimit, l.CPUs, runtime.NumCPU())
	case l.Pids < 8:
		return fmt.Errorf("%w: pids %d is below the 8 threads the Go runtime in the child needs", ErrBadLimit, l.Pids)
	case l.Timeout < 0 || l.CPUTime < 0:
		return fmt.Errorf("%w: timeout %s / cpu time %s must not be negative", ErrBadLimit, l.Timeout, l.CPUTime)
	case l.ClockResolution < time.Nanosecond || l.ClockResolution > wasm.MaxClockResolution:
		return fmt.Errorf("%w: clock resolution %s must be between 1ns and %s", ErrBadLimit, l.ClockResolution, wasm.MaxClockResolution)
	}
	return nil
}
