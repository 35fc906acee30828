package sandbox

import (
	"strings"
	"testing"
	"time"

	"github.com/agentbox/agentbox/outcome"
)

// TestCompileVerdict: a compile that passes its own budget is the module's fault,
// invalid_module naming the compile limit, never the guest's memory_limit or timeout; the
// compile child's output never reaches the task's.
func TestCompileVerdict(t *testing.T) {
	budget := CompileLimits{Timeout: 90 * time.Second, MemoryBytes: 512 << 20, CPUs: 1}
	guest := Limits{MemoryBytes: 64 << 20}
	tests := []struct {
		name    string
		in      Result
		want    outcome.Outcome
		wantMsg string
	}{
		{"cgroup OOM during compile", Result{Outcome: outcome.MemoryLimit, Message: "OOM-killed"}, outcome.InvalidModule, "compile memory limit of 512Mi"},
		{"Go runtime out of memory", Result{Outcome: outcome.SandboxError, Stderr: []byte("fatal error: out of memory\n\ngoroutine 1 [running]:")}, outcome.InvalidModule, "compile memory limit of 512Mi"},
		{"compile too slow", Result{Outcome: outcome.Timeout, Message: "wall-clock limit of 1m30s reached"}, outcome.InvalidModule, "compile time limit of 1m30s"},
		{"module does not decode", Result{Outcome: outcome.InvalidModule, Message: "invalid module: magic"}, outcome.InvalidModule, "magic"},
		{"caller cancelled", Result{Outcome: outcome.Cancelled, Message: "cancelled"}, outcome.Cancelled, "cancelled"},
		{"our own fault", Result{Outcome: outcome.SandboxError, Message: "create cgroup: EBUSY"}, outcome.SandboxError, "EBUSY"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := compileVerdict(tt.in, budget, guest)
			if got.Outcome != tt.want || !strings.Contains(got.Message, tt.wantMsg) {
				t.Fatalf("compileVerdict = %s %q; want %s with %q", got.Outcome, got.Message, tt.want, tt.wantMsg)
			}
			if len(got.Stderr) != 0 || got.Limits != guest {
				t.Fatalf("compile output leaked (%q) or limits not the guest's (%+v)", got.Stderr, got.Limits)
			}
		})
	}
}
