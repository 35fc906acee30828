package sandbox

import (
	"bytes"
	"errors"
	"fmt"
	"os/exec"
	"syscall"

	"github.com/agentbox/agentbox/internal/units"
	"github.com/agentbox/agentbox/outcome"
)

// facts is everything the supervisor knows when a task has ended.
type facts struct {
	limits      Limits
	killedFor   outcome.Outcome // why we killed the task; "" if we did not
	killMessage string
	oomKills    uint64      // from the cgroup
	pidsHits    uint64      // forks/threads the cgroup's pids.max refused
	child       *wireResult // what the child reported, if anything
	childErr    error       // why its report was unreadable
	waitErr     error       // from exec.Cmd.Wait
}

// decide turns facts into a verdict. The order is the trust order: our own kills first
// (a timeout kill is never mistaken for OOM), then the kernel's OOM count, then the child's
// report, then how the child died. A guest that escaped wazero can forge the report, so it
// never outranks what the supervisor saw itself.
func decide(f facts) Result {
	switch {
	case f.killedFor != "":
		return Result{Outcome: f.killedFor, Message: f.killMessage}
	case f.oomKills > 0:
		return Result{Outcome: outcome.MemoryLimit, Message: fmt.Sprintf(
			"memory limit of %s reached: the kernel OOM-killed the task (%d kill(s))", units.FormatSize(f.limits.MemoryBytes), f.oomKills)}
	case f.child != nil:
		r := *f.child
		return Result{Outcome: r.Outcome, ExitCode: r.ExitCode, Message: r.Message,
			StdoutTruncated: r.StdoutTruncated, StderrTruncated: r.StderrTruncated}
	}
	msg := deathMessage(f)
	if f.pidsHits > 0 {
		// A wasm guest cannot start threads: only an escape, or a runtime fault the guest
		// provoked, makes the task hit pids.max. It is the task's limit, not our fault.
		return Result{Outcome: outcome.PidsLimit, Message: fmt.Sprintf(
			"pids limit of %d reached (%d fork/thread creation(s) refused): %s", f.limits.Pids, f.pidsHits, msg)}
	}
	return Result{Outcome: outcome.SandboxError, Message: msg}
}

// deathMessage explains a child that ended without a readable report.
func deathMessage(f facts) string {
	var ee *exec.ExitError
	if !errors.As(f.waitErr, &ee) {
		if f.childErr != nil {
			return fmt.Sprintf("sandbox child sent an unreadable result: %v", f.childErr)
		}
		return fmt.Sprintf("sandbox child ended without a result (wait: %v)", f.waitErr)
	}
	ws, _ := ee.Sys().(syscall.WaitStatus)
	switch {
	case ws.Signaled() && ws.Signal() == syscall.SIGSYS:
		return "sandbox child killed by seccomp (SIGSYS): it made a forbidden system call"
	case ws.Signaled() && ws.Signal() == syscall.SIGKILL && f.limits.CPUTime > 0:
		return fmt.Sprintf("sandbox child killed by SIGKILL without a result (RLIMIT_CPU hard limit past %s?)", f.limits.CPUTime)
	case ws.Signaled():
		return fmt.Sprintf("sandbox child killed by signal %v without a result", ws.Signal())
	}
	return fmt.Sprintf("sandbox child exited with status %d without a result", ws.ExitStatus())
}

// compileVerdict turns a failed sandboxed compile into the task's verdict. The compile has
// its own budget, so passing it says the module is too costly to compile (invalid_module,
// naming the compile limit), never that the guest passed its own limits; a cancel stays a
// cancel and a fault of ours stays sandbox_error.
func compileVerdict(r Result, b CompileLimits, guest Limits) Result {
	msg := ""
	switch {
	case r.Outcome == outcome.MemoryLimit || goOutOfMemory(r.Stderr):
		msg = fmt.Sprintf("compiling the module needed more than the compile memory limit of %s", units.FormatSize(b.MemoryBytes))
	case r.Outcome == outcome.Timeout:
		msg = fmt.Sprintf("compiling the module took longer than the compile time limit of %s", b.Timeout)
	case r.Outcome == outcome.CPULimit:
		msg = "compiling the module used up its CPU budget"
	}
	if msg != "" {
		r.Outcome, r.Message = outcome.InvalidModule, msg
	}
	r.ExitCode, r.Limits = 0, guest
	// The compile child's output is ours (a runtime crash trace at worst), not the guest's.
	r.Stdout, r.Stderr, r.StdoutTruncated, r.StderrTruncated = nil, nil, false, false
	return r
}

// goOutOfMemory recognises the Go runtime's own fatal allocation failure in a child's
// stderr: a huge allocation that wazero made on the module's word.
func goOutOfMemory(stderr []byte) bool {
	return bytes.Contains(stderr, []byte("fatal error: out of memory")) ||
		bytes.Contains(stderr, []byte("runtime: out of memory"))
}
