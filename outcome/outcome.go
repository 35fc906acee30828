// Package outcome is the closed set of ways a task can end. The CLI, the API, metrics and
// exit codes all speak this one vocabulary, so a verdict means the same thing everywhere.
package outcome

import "fmt"

// Outcome names how a task ended. The zero value is not a valid outcome.
type Outcome string

// The closed set (DESIGN.md, "Outcomes"). Adding one is an API change: update the README's
// table, the CLI's exit codes and the metrics labels in the same change.
const (
	// OK: the guest returned from _start or called proc_exit(0).
	OK Outcome = "ok"
	// Exit: the guest called proc_exit with a non-zero code; the code is kept.
	Exit Outcome = "exit"
	// Trap: a wasm trap (unreachable, out-of-bounds access, stack overflow, ...).
	Trap Outcome = "trap"
	// MemoryLimit: the linear-memory cap refused a grow the guest needed, or the cgroup's
	// memory limit OOM-killed the task.
	MemoryLimit Outcome = "memory_limit"
	// Timeout: the wall-clock limit passed and the task was killed.
	Timeout Outcome = "timeout"
	// CPULimit: the task used more CPU time than its limit and was killed.
	CPULimit Outcome = "cpu_limit"
	// PidsLimit: the task hit pids.max (threads and processes). A wasm guest cannot start
	// threads, so only a guest that escaped wazero, or a runtime fault it provoked, gets here.
	PidsLimit Outcome = "pids_limit"
	// OutputLimit: the guest wrote more than the cap to stdout or stderr.
	OutputLimit Outcome = "output_limit"
	// InvalidModule: the bytes did not decode, validate, compile or link (no _start,
	// unknown import, shared memory, ...).
	InvalidModule Outcome = "invalid_module"
	// Cancelled: the caller cancelled the task before it finished.
	Cancelled Outcome = "cancelled"
	// SandboxError: our own infrastructure failed; the only outcome retried by default.
	SandboxError Outcome = "sandbox_error"
)

// All lists every outcome in a stable order (for docs, metrics and table tests).
var All = []Outcome{OK, Exit, Trap, MemoryLimit, PidsLimit, Timeout, CPULimit, OutputLimit, InvalidModule, Cancelled, SandboxError}

// Valid reports whether o is one of the closed set.
func (o Outcome) Valid() bool {
	for _, v := range All {
		if o == v {
			return true
		}
	}
	return false
}

// Parse turns a wire string into an Outcome, refusing anything outside the closed set.
func Parse(s string) (Outcome, error) {
	o := Outcome(s)
	if !o.Valid() {
		return "", fmt.Errorf("outcome %q is not one of the closed set %v", s, All)
	}
	return o, nil
}
