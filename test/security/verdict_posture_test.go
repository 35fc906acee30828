//go:build linux

package security

import (
	"context"
	"io"
	"os"
	"strings"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/agentbox/agentbox/internal/testhook"
	"github.com/agentbox/agentbox/outcome"
	"github.com/agentbox/agentbox/sandbox"
)

// The verdict's posture (sandbox.Posture) says what best-effort hardening a run got. These
// tests hold it to what the host and the kernel say from outside, and show that a guest
// cannot forge it.

var verdictPosturePayloads = map[string]sandbox.Payload{"forge-posture": forgePosture}

// forgedPosture claims more than any kernel gives.
const forgedPosture = `{"posture":{"landlock_abi":99,"time_namespace":true,` +
	`"speculative_store_bypass":"forged","indirect_branch_speculation":"forged"}}` + "\n"

// forgePosture writes a posture line of its own on the result pipe, as an escaped guest
// can, closes it and waits to be killed: the pipe then holds stage one's line, then this.
func forgePosture([]string, io.Reader, io.Writer, io.Writer) int {
	b := []byte(forgedPosture)
	sys(unix.SYS_WRITE, 4, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b))) // sandbox's fdResult
	sys(unix.SYS_CLOSE, 4)
	time.Sleep(time.Hour)
	return 0
}

// speculationWord is a /proc status value of a speculation control in Posture's words: a
// second reading of the kernel's state (fs/proc/array.c) beside the sandbox's prctl one.
func speculationWord(status string) string {
	switch status {
	case "not vulnerable", "not affected":
		return sandbox.SpeculationNotAffected
	case "thread force mitigated", "thread mitigated", "conditional force disabled", "conditional disabled":
		return sandbox.SpeculationDisabledForTask
	case "globally mitigated", "always disabled":
		return sandbox.SpeculationDisabledHostWide
	case "vulnerable", "thread vulnerable", "always enabled", "conditional enabled":
		return sandbox.SpeculationEnabled
	}
	return "unmapped status " + status
}

// expectedPosture is what a run must report on this host: Landlock at the kernel's ABI
// (none below 2, or with the wall down), the time namespace where the sandbox makes one,
// and the speculation state of a thread that restricted it, or with allowSpeculation this
// process's own, which never asked.
func expectedPosture(t *testing.T, noLandlock, allowSpeculation bool) sandbox.Posture {
	t.Helper()
	p := sandbox.Posture{TimeNamespace: sandbox.TimeNamespaces()}
	if abi := landlockABI(); abi >= 2 && !noLandlock {
		p.LandlockABI = abi
	}
	status := speculationReference(t)
	if allowSpeculation {
		b, err := os.ReadFile("/proc/self/status")
		must(t, err)
		status = map[string]string{}
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok {
				status[k] = strings.TrimSpace(v)
			}
		}
	}
	p.StoreBypass = speculationWord(status["Speculation_Store_Bypass"])
	p.IndirectBranch = speculationWord(status["SpeculationIndirectBranch"])
	return p
}

// TestVerdictPosture: the posture of a run is the host's truth, with each best-effort wall
// up or taken down, and a guest's own posture line does not replace it.
func TestVerdictPosture(t *testing.T) {
	tests := []struct {
		name             string
		payload          string
		unsafe           testhook.Unsafe
		allowSpeculation bool
		timeout          time.Duration
		want             outcome.Outcome
	}{
		{name: "every wall up", payload: "clocks", want: outcome.OK},
		{name: "Landlock down", payload: "clocks", unsafe: testhook.Unsafe{NoLandlock: true}, want: outcome.OK},
		{name: "speculation allowed", payload: "clocks", allowSpeculation: true, want: outcome.OK},
		{name: "a guest writes its own posture line", payload: "forge-posture", timeout: time.Second, want: outcome.Timeout},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sb := newSandboxWith(t, sandbox.Config{AllowSpeculation: tt.allowSpeculation})
			ctx := withHooks(t, context.Background(), testhook.Hooks{Payload: tt.payload, Unsafe: tt.unsafe})
			res, err := sb.Run(ctx, sandbox.Spec{Limits: sandbox.Limits{Timeout: tt.timeout}})
			if err != nil || res.Outcome != tt.want {
				t.Fatalf("run: %v, %s %q, stderr %.300q", err, res.Outcome, res.Message, res.Stderr[max(0, len(res.Stderr)-3000):])
			}
			want := expectedPosture(t, tt.unsafe.NoLandlock, tt.allowSpeculation)
			if res.Posture == nil || *res.Posture != want {
				t.Fatalf("posture %+v, want %+v", res.Posture, want)
			}
			if v := res.Verdict(); v.Posture == nil || v.Posture.LandlockABI != want.LandlockABI {
				t.Fatalf("the verdict carries posture %+v, want %+v", v.Posture, want)
			}
		})
	}
}

// TestInvalidModulePosture: a module the sandboxed compile refused carries the compile
// child's posture, which the same walls made.
func TestInvalidModulePosture(t *testing.T) {
	sb := newSandbox(t)
	res, err := sb.Run(context.Background(), sandbox.Spec{Module: []byte("\x00asm\x01\x00\x00\x00\xff")})
	if err != nil || res.Outcome != outcome.InvalidModule {
		t.Fatalf("run: %v, %s %q", err, res.Outcome, res.Message)
	}
	if want := expectedPosture(t, false, false); res.Posture == nil || *res.Posture != want {
		t.Fatalf("an invalid module's posture %+v, want %+v", res.Posture, want)
	}
}
