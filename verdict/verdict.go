// Package verdict holds the wire types that `agentbox run --json`, `--verdict-file` and the
// daemon's API share: the verdict on a task, and the error object for a request refused
// before it ran. Users script against these names, so they live in one leaf package (it
// imports only outcome) and every printer of a verdict goes through them.
package verdict

import "github.com/agentbox/agentbox/outcome"

// Verdict is how one task ended. It is printed as one JSON object.
type Verdict struct {
	Outcome outcome.Outcome `json:"outcome"`
	// Message is a sentence that says what happened, naming the limit and its value.
	Message string `json:"message"`
	// ExitCode is the guest's own exit code, present only when the guest chose its end
	// (outcome ok or exit). A trap, a kill or an invalid module has no exit code, and
	// printing 0 there would read as success.
	ExitCode *uint32 `json:"exit_code,omitempty"`
	// Stdout and Stderr are the captured output, present only where it was captured rather
	// than streamed (`--json` on stdout; never in a verdict file).
	Stdout          *string `json:"stdout,omitempty"`
	Stderr          *string `json:"stderr,omitempty"`
	StdoutTruncated bool    `json:"stdout_truncated"`
	StderrTruncated bool    `json:"stderr_truncated"`
	Usage           Usage   `json:"usage"`
	Limits          Limits  `json:"limits"`
	// Warnings are problems of ours that did not change the verdict (an unusable compile
	// cache, say). Always present, empty when there are none, so scripts need no null check.
	Warnings []string `json:"warnings"`
	// Posture is the best-effort hardening the guest ran under (for a module the sandboxed
	// compile refused, the compile's); absent when the sandbox failed, or a kill came, before
	// the sandbox child finished its setup.
	Posture *Posture `json:"posture,omitempty"`
}

// Posture is the best-effort hardening of one run: what the sandbox child's stage one
// achieved before the guest's first instruction, which the guest cannot change afterwards.
// The walls that are never optional (namespaces, cgroup, seccomp, no capabilities) are not
// listed: without any of them there is no run.
type Posture struct {
	// LandlockABI is the ABI of the task's Landlock domain; 0 when it has none (a kernel
	// below ABI 2, or a test with the wall down).
	LandlockABI int `json:"landlock_abi"`
	// TimeNamespace: the task's monotonic and boot clocks start at 1 s, not at the host's
	// boot (Linux 6.6 and later).
	TimeNamespace bool `json:"time_namespace"`
	// StoreBypass and IndirectBranch are the task's speculation state as the kernel gives
	// it (PR_GET_SPECULATION_CTRL), in the words of sandbox's Speculation* constants.
	StoreBypass    string `json:"speculative_store_bypass"`
	IndirectBranch string `json:"indirect_branch_speculation"`
}

// WithoutOutput returns v without the captured output (truncation flags kept): the shape
// of a verdict file, written beside output that was streamed.
func (v Verdict) WithoutOutput() Verdict {
	v.Stdout, v.Stderr = nil, nil
	return v
}

// Usage is what the task consumed.
type Usage struct {
	// WallMS is the run's wall time, compile excluded.
	WallMS int64 `json:"wall_ms"`
	// CompileMS is the sandboxed compile this run had to do first; 0 when the compiled
	// code came from the cache.
	CompileMS       int64  `json:"compile_ms"`
	CPUMS           int64  `json:"cpu_ms"`
	PeakMemoryBytes uint64 `json:"peak_memory_bytes"`
}

// Limits echoes the limits as applied, sizes and durations in the forms the flags take
// ("256Mi", "30s") and memory also in bytes.
type Limits struct {
	Memory          string  `json:"memory"`
	MemoryBytes     uint64  `json:"memory_bytes"`
	CPUs            float64 `json:"cpus"`
	Pids            int64   `json:"pids"`
	Timeout         string  `json:"timeout"`
	CPUTime         string  `json:"cpu_time,omitempty"` // absent: no CPU-time limit
	OutputLimit     string  `json:"output_limit"`
	ClockResolution string  `json:"clock_resolution"`
}
