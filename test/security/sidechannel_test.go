//go:build linux

package security

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/agentbox/agentbox/internal/privtest"
	"github.com/agentbox/agentbox/internal/testhook"
	"github.com/agentbox/agentbox/outcome"
	"github.com/agentbox/agentbox/sandbox"
)

// Side channels the sandbox closes in stage one (sandbox/hardening_linux.go): the host's
// clocks, through a time namespace, and speculative execution, through per-task
// speculation control.

// sideChannelPayloads read, from inside, what a guest that escaped wazero could.
var sideChannelPayloads = map[string]sandbox.Payload{
	// clocks prints the monotonic and boot clocks in nanoseconds, straight from the
	// syscall (the vDSO reads the same time namespace).
	"clocks": func(_ []string, _ io.Reader, stdout, _ io.Writer) int {
		var mono, boot unix.Timespec
		if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &mono); err != nil {
			fmt.Fprintf(stdout, "monotonic: %v\n", err)
			return 1
		}
		if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &boot); err != nil {
			fmt.Fprintf(stdout, "boottime: %v\n", err)
			return 1
		}
		fmt.Fprintf(stdout, "%d %d\n", mono.Nano(), boot.Nano())
		return 0
	},
}

func withTimeNamespace(ns []string) []string {
	if sandbox.TimeNamespaces() {
		return append(ns, "time")
	}
	return ns
}

// TestClocksHideHostUptime: a payload's monotonic and boot clocks count from its own
// start, not from the host's boot. Without the time namespace they read the host's clocks,
// which are past the reading this test takes before the run; with it they are at most the
// run's own length plus the namespace's one-second start.
func TestClocksHideHostUptime(t *testing.T) {
	privtest.RequireRoot(t)
	if !sandbox.TimeNamespaces() {
		t.Skip("tasks get no time namespace on this kernel (none, or older than Linux 6.6, whose execve does not enter one): they read the host's clocks, and agentbox check says so")
	}
	sb := newPostureSandbox(t)
	var hostBoot unix.Timespec
	must(t, unix.ClockGettime(unix.CLOCK_BOOTTIME, &hostBoot))
	start := time.Now()
	res, err := sb.Run(withHooks(t, context.Background(), testhook.Hooks{Payload: "clocks"}), sandbox.Spec{})
	ran := time.Since(start)
	if err != nil || res.Outcome != outcome.OK {
		t.Fatalf("run: %v, %s %q, stdout %q", err, res.Outcome, res.Message, res.Stdout)
	}
	var mono, boot int64
	if _, err := fmt.Sscanf(string(res.Stdout), "%d %d\n", &mono, &boot); err != nil {
		t.Fatalf("payload printed %q: %v", res.Stdout, err)
	}
	bound := time.Second + ran
	for _, c := range []struct {
		name string
		ns   int64
	}{{"CLOCK_MONOTONIC", mono}, {"CLOCK_BOOTTIME", boot}} {
		if c.ns >= hostBoot.Nano() || time.Duration(c.ns) > bound {
			t.Errorf("%s inside reads %s; the host's boot clock read %s before the run, which took %s: want at most %s",
				c.name, time.Duration(c.ns), time.Duration(hostBoot.Nano()), ran, bound)
		}
	}
}

// speculationReference is what the kernel grants a thread that force-disables speculative
// store bypass and indirect branch speculation, as its status lines say: the test asks in
// a process of its own (this test binary again, speculationProbeEnv; never on a thread of
// this process, whose end would fire the Pdeathsig of tasks forked from it), and the
// posture test expects the same on every thread of a task. On a host that offers per-task
// control a task that did not ask reads "thread vulnerable"/"conditional enabled" and
// fails; where the kernel or hypervisor offers none (this project's development VM:
// "vulnerable", "always enabled") the reference and the task agree whatever the sandbox
// does, and `agentbox check` warns.
var speculationReference = func() func(t *testing.T) map[string]string {
	var once sync.Once
	var want map[string]string
	var err error
	return func(t *testing.T) map[string]string {
		t.Helper()
		once.Do(func() { want, err = speculationProbe() })
		if err != nil {
			t.Fatalf("speculation reference: %v", err)
		}
		return want
	}
}()

// speculationProbeEnv makes this test binary, run with it set, the reference probe
// (TestMain calls runSpeculationProbe first).
const speculationProbeEnv = "AGENTBOX_TEST_SPECULATION_PROBE"

func speculationProbe() (map[string]string, error) {
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), speculationProbeEnv+"=1")
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%s=1 %s: %w", speculationProbeEnv, os.Args[0], err)
	}
	lines := map[string]string{}
	for _, line := range strings.Split(string(out), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && (k == "Speculation_Store_Bypass" || k == "SpeculationIndirectBranch") {
			lines[k] = strings.TrimSpace(v)
		}
	}
	if len(lines) != 2 {
		return nil, fmt.Errorf("the probe printed %q, want both speculation lines", out)
	}
	return lines, nil
}

// runSpeculationProbe is the whole of this binary when speculationProbeEnv is set: on one
// locked thread, force-disable both, print that thread's status, exit.
func runSpeculationProbe() {
	if os.Getenv(speculationProbeEnv) != "1" {
		return
	}
	runtime.LockOSThread()
	for _, which := range []uintptr{unix.PR_SPEC_STORE_BYPASS, unix.PR_SPEC_INDIRECT_BRANCH} {
		unix.Prctl(unix.PR_SET_SPECULATION_CTRL, which, unix.PR_SPEC_FORCE_DISABLE, 0, 0)
	}
	b, err := os.ReadFile("/proc/thread-self/status")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Stdout.Write(b)
	os.Exit(0)
}
