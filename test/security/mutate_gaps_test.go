//go:build linux

package security

import (
	"context"
	"io"
	"os/signal"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/agentbox/agentbox/internal/testhook"
	"github.com/agentbox/agentbox/outcome"
	"github.com/agentbox/agentbox/sandbox"
)

// Walls `make mutate` (scripts/mutate/mutants.go) found unguarded: removed one at a time,
// the rest of the suite stayed green. Each test here fails when its wall alone is gone.

// gapPayloads are the native payloads of these tests.
var gapPayloads = map[string]sandbox.Payload{
	"forge-then-sleep": forgeThenSleep,
	"forge-then-spin":  forgeThenSpin,
}

// forgeThenSleep forges an ok report and then outlives the task's wall clock without ever
// reporting again: only a kill the supervisor itself makes can name the verdict.
func forgeThenSleep([]string, io.Reader, io.Writer, io.Writer) int {
	forgeReport()
	time.Sleep(time.Hour)
	return 0
}

// forgeThenSpin forges an ok report, ignores SIGXCPU and burns CPU until something kills
// it: the supervisor at --cpu-time, or the kernel at the RLIMIT_CPU hard limit one second
// later. It ignores SIGXCPU because the sandbox's own handler would otherwise end the child
// at the soft limit, usually before the supervisor's next 20 ms reading of the cgroup, and
// its cpu_limit report cannot reach the result pipe the payload closed: the verdict is then
// the forged ok (decide does not compare the final CPU usage with the limit). That is a
// weakness of its own, reported with `make mutate`'s first run; this test is about the
// supervisor's kill.
func forgeThenSpin([]string, io.Reader, io.Writer, io.Writer) int {
	forgeReport()
	signal.Ignore(syscall.SIGXCPU)
	for {
	}
}

// TestSupervisorKillsOutrankForgedReports: an escaped guest that has already written an ok
// report and then passes its wall clock, or its CPU time, is stopped by the supervisor's
// own kill, whose verdict outranks the report. The child's inner limits cannot do it: the
// report they would send cannot reach the closed pipe, and the payload ignores SIGXCPU.
func TestSupervisorKillsOutrankForgedReports(t *testing.T) {
	sb := newSandbox(t)
	for _, a := range []attack{
		{Name: "forged ok, then past the wall clock", From: "payload", payload: "forge-then-sleep",
			limits: sandbox.Limits{Timeout: time.Second}, Expect: "outcome timeout", check: notForged},
		{Name: "forged ok, then past the CPU time", From: "payload", payload: "forge-then-spin",
			limits: sandbox.Limits{Timeout: 2 * time.Minute, CPUTime: time.Second}, Expect: "outcome cpu_limit", check: notForged},
	} {
		t.Run(a.Name, func(t *testing.T) { runAttack(t, sb, a) })
	}
}

// TestGuestRunsBehindTwoFilters reads, from the host, the seccomp filters of every thread of
// a task running a wasm guest (the posture test runs a native payload, which gets the
// no-new-exec filter by another call): the allowlist and the no-new-exec filter stacked on
// it before the guest's first instruction (wasm.Config.BeforeGuest). echo.wasm copies stdin
// to stdout, so once it has echoed a line its code is running.
func TestGuestRunsBehindTwoFilters(t *testing.T) {
	sb := newSandbox(t)
	stdin, feed := io.Pipe()
	t.Cleanup(func() { feed.Close() })
	out := &watchWriter{}
	pids := make(chan int, 1)
	done := make(chan sandbox.Result, 1)
	spec := sandbox.Spec{Module: sharedModule("echo.wasm")(t), Args: []string{"echo.wasm"}, Stdin: stdin, Stdout: out,
		Limits: sandbox.Limits{Timeout: 2 * time.Minute}}
	ctx := withHooks(t, context.Background(), testhook.Hooks{OnStart: func(pid int) { pids <- pid }})
	go func() {
		res, err := sb.Run(ctx, spec)
		if err != nil {
			res = sandbox.Result{Outcome: outcome.SandboxError, Message: err.Error()}
		}
		done <- res
	}()
	var pid int
	select {
	case pid = <-pids:
	case res := <-done:
		t.Fatalf("task ended before it started: %s %q", res.Outcome, res.Message)
	}
	feed.Write([]byte("guest runs\n"))
	out.waitForOrEnd(t, "guest runs\n", done)
	for _, tid := range threadIDs(t, pid) {
		st := readStatus(t, procPath(pid, "task", strconv.Itoa(tid), "status"))
		if st["Seccomp"] != "2" || st["Seccomp_filters"] != "2" {
			t.Errorf("thread %d of the guest's task: Seccomp %q, Seccomp_filters %q; want 2 and 2 (the allowlist and NoNewExec)",
				tid, st["Seccomp"], st["Seccomp_filters"])
		}
	}
	feed.Close()
	if res := <-done; res.Outcome != outcome.OK {
		t.Errorf("echo ended %s %q, want ok", res.Outcome, res.Message)
	}
}

// TestAllowlistRefusesWXAlone: the allowlist's own W^X rule (mmap, mprotect and
// pkey_mprotect never writable and executable at once) with the no-new-exec filter that
// stands in front of it for the guest taken down. The rule is the only W^X wall of the
// sandboxed compile and of stage two before the guest starts, where new executable
// mappings are allowed; the control without the allowlist shows nothing else refuses it.
func TestAllowlistRefusesWXAlone(t *testing.T) {
	sb := newSandbox(t)
	for _, a := range []attack{
		{Name: "mmap RWX, the allowlist alone", From: "payload", payload: "mmap-rwx", limits: quick,
			Expect: "EPERM", setup: withUnsafe(testhook.Unsafe{NoExecSeal: true}, nil)},
		{Name: "mmap RWX, no filter at all", From: "payload", payload: "mmap-rwx", limits: quick,
			Expect: "ok", setup: withUnsafe(testhook.Unsafe{NoSeccomp: true}, nil)},
	} {
		t.Run(a.Name, func(t *testing.T) { runAttack(t, sb, a) })
	}
}
