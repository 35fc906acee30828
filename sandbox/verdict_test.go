package sandbox

import (
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/agentbox/agentbox/outcome"
)

// exitErr returns a real *exec.ExitError for a shell that ends as script says.
func exitErr(t *testing.T, script string) error {
	t.Helper()
	err := exec.Command("/bin/sh", "-c", script).Run()
	if err == nil {
		t.Fatalf("sh -c %q succeeded; want a failure", script)
	}
	return err
}

func TestDecide(t *testing.T) {
	lim := Limits{MemoryBytes: 64 << 20, Timeout: time.Second, Pids: 64}
	trap := &wireResult{Outcome: outcome.Trap, Message: "unreachable"}
	forgedOK := &wireResult{Outcome: outcome.OK, Message: "all fine, honest"}
	tests := []struct {
		name    string
		f       facts
		want    outcome.Outcome
		wantMsg string
	}{
		{name: "our timeout kill beats an OOM count", f: facts{killedFor: outcome.Timeout, killMessage: "wall-clock limit of 1s reached", oomKills: 1}, want: outcome.Timeout, wantMsg: "1s"},
		{name: "OOM beats a forged ok", f: facts{oomKills: 2, child: forgedOK}, want: outcome.MemoryLimit, wantMsg: "64Mi"},
		{name: "child report when nothing else", f: facts{child: trap}, want: outcome.Trap, wantMsg: "unreachable"},
		{name: "cancel", f: facts{killedFor: outcome.Cancelled, killMessage: "cancelled"}, want: outcome.Cancelled},
		// An escaped guest can write any report before it is killed: our kill outranks it.
		{name: "output kill beats a forged ok", f: facts{killedFor: outcome.OutputLimit, killMessage: "stdout passed the output limit", child: forgedOK}, want: outcome.OutputLimit, wantMsg: "output limit"},
		{name: "timeout kill beats a forged ok", f: facts{killedFor: outcome.Timeout, killMessage: "wall-clock limit of 1s reached", child: forgedOK}, want: outcome.Timeout, wantMsg: "1s"},
		{name: "CPU kill beats a forged ok", f: facts{killedFor: outcome.CPULimit, killMessage: "CPU-time limit of 1s reached", child: forgedOK}, want: outcome.CPULimit, wantMsg: "CPU-time"},
		{name: "cancel beats a forged ok", f: facts{killedFor: outcome.Cancelled, killMessage: "cancelled by the caller", child: forgedOK}, want: outcome.Cancelled, wantMsg: "cancelled"},
		{name: "our kill beats a forged ok and an OOM count", f: facts{killedFor: outcome.Timeout, killMessage: "wall-clock limit of 1s reached", oomKills: 1, child: forgedOK}, want: outcome.Timeout, wantMsg: "1s"},
		{name: "seccomp kill without report", f: facts{waitErr: exitErr(t, "kill -SYS $$")}, want: outcome.SandboxError, wantMsg: "seccomp"},
		{name: "exit without report", f: facts{waitErr: exitErr(t, "exit 7")}, want: outcome.SandboxError, wantMsg: "status 7"},
		{name: "clean exit without report", f: facts{}, want: outcome.SandboxError, wantMsg: "without a result"},
		{name: "runtime died for want of a thread", f: facts{pidsHits: 3, waitErr: exitErr(t, "exit 2")}, want: outcome.PidsLimit, wantMsg: "pids limit of 64 reached (3 fork"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.f.limits = lim
			got := decide(tt.f)
			if got.Outcome != tt.want || !strings.Contains(got.Message, tt.wantMsg) {
				t.Fatalf("decide = %s %q; want %s with %q", got.Outcome, got.Message, tt.want, tt.wantMsg)
			}
		})
	}
}
