package seccomp

import (
	"errors"
	"runtime"
	"slices"
	"testing"
)

func defaultOrSkip(t *testing.T) Policy {
	t.Helper()
	p := Default()
	if len(p.Rules) == 0 {
		t.Skipf("no allowlist for GOARCH=%s yet", runtime.GOARCH)
	}
	return p
}

// TestDefaultIsWellFormed: every rule has names, a reason and a valid action,
// and no syscall is named by an unconditional rule and any other rule.
func TestDefaultIsWellFormed(t *testing.T) {
	p := defaultOrSkip(t)
	if err := p.Check(); err != nil {
		t.Fatal(err)
	}
	for i, r := range p.Rules {
		if r.Reason == "" || len(r.Names) == 0 {
			t.Errorf("rule %d %v: missing reason or names", i, r.Names)
		}
	}
}

// TestDefaultActions pins the decisions that matter for the security
// invariants, so a table edit that weakens one fails here.
func TestDefaultActions(t *testing.T) {
	p := defaultOrSkip(t)
	tests := []struct {
		name    string
		syscall string
		want    Action
	}{
		{name: "network denied", syscall: "socket", want: EPERM},
		{name: "socketpair denied", syscall: "socketpair", want: EPERM},
		{name: "unshare denied", syscall: "unshare", want: EPERM},
		{name: "setns denied", syscall: "setns", want: EPERM},
		{name: "mount denied", syscall: "mount", want: EPERM},
		{name: "pivot_root denied", syscall: "pivot_root", want: EPERM},
		{name: "ptrace denied", syscall: "ptrace", want: EPERM},
		{name: "execve denied", syscall: "execve", want: EPERM},
		{name: "fork denied", syscall: "fork", want: EPERM},
		{name: "ioctl denied (TIOCSTI)", syscall: "ioctl", want: EPERM},
		{name: "io_uring denied", syscall: "io_uring_setup", want: EPERM},
		{name: "memfd_create denied", syscall: "memfd_create", want: EPERM},
		{name: "bpf denied", syscall: "bpf", want: EPERM},
		{name: "userfaultfd denied", syscall: "userfaultfd", want: EPERM},
		{name: "kill denied", syscall: "kill", want: EPERM},
		{name: "clone3 looks absent", syscall: "clone3", want: ENOSYS},
		{name: "kexec_load kills", syscall: "kexec_load", want: KillProcess},
		{name: "kexec_file_load kills", syscall: "kexec_file_load", want: KillProcess},
		{name: "init_module kills", syscall: "init_module", want: KillProcess},
		{name: "finit_module kills", syscall: "finit_module", want: KillProcess},
		{name: "delete_module kills", syscall: "delete_module", want: KillProcess},
		{name: "reboot kills", syscall: "reboot", want: KillProcess},
		{name: "swapon kills", syscall: "swapon", want: KillProcess},
		{name: "iopl kills", syscall: "iopl", want: KillProcess},
		{name: "ioperm kills", syscall: "ioperm", want: KillProcess},
		{name: "open_by_handle_at kills", syscall: "open_by_handle_at", want: KillProcess},
		{name: "runtime needs futex-free exit", syscall: "exit_group", want: Allow},
		{name: "runtime preemption", syscall: "tgkill", want: Allow},
		{name: "WASI path_open", syscall: "openat", want: Allow},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := p.ActionFor(tt.syscall)
			if !ok || got != tt.want {
				t.Errorf("ActionFor(%q) = %v, %v; want %v, true", tt.syscall, got, ok, tt.want)
			}
		})
	}
}

// TestDefaultConditional: the calls with a dangerous mode are never
// unconditional, and clone, futex and madvise are pinned to exactly the values
// the Go runtime uses (NotListed denies the rest with EPERM).
func TestDefaultConditional(t *testing.T) {
	p := defaultOrSkip(t)
	for _, name := range []string{"clone", "mmap", "mprotect", "prctl", "fcntl", "prlimit64", "futex", "madvise"} {
		if a, ok := p.ActionFor(name); ok {
			t.Errorf("%s has an unconditional rule (%v); it must be conditional", name, a)
		}
	}
	tests := []struct {
		syscall string
		arg     uint
		want    []uint64
	}{
		// CLONE_VM|FS|FILES|SIGHAND|SYSVSEM|THREAD|SETTLS: runtime·clone on amd64.
		{syscall: "clone", arg: 0, want: []uint64{0xd0f00}},
		{syscall: "futex", arg: 1, want: []uint64{0x80, 0x81}},
		{syscall: "madvise", arg: 2, want: []uint64{4, 8, 14, 15}},
	}
	for _, tt := range tests {
		pn, err := p.pinned(tt.syscall)
		if err != nil || pn == nil {
			t.Errorf("%s: not pinned (%v)", tt.syscall, err)
			continue
		}
		if pn.arg != tt.arg || !slices.Equal(pn.values, tt.want) {
			t.Errorf("%s pinned to arg%d %#x, want arg%d %#x", tt.syscall, pn.arg, pn.values, tt.arg, tt.want)
		}
		for _, r := range p.Rules {
			if slices.Contains(r.Names, tt.syscall) && hasNotListed(r) && r.Action != EPERM {
				t.Errorf("%s: the rest answers %v, want EPERM", tt.syscall, r.Action)
			}
		}
	}
}

// TestGlibcOnlyCallsStayOut: what only a cgo build calls once the filter is
// on stays out of the production table (the victim adds some back for itself),
// and so answers ENOSYS in the sandboxed child.
func TestGlibcOnlyCallsStayOut(t *testing.T) {
	p := defaultOrSkip(t)
	for _, name := range []string{"rseq", "set_robust_list", "sched_getaffinity", "clock_nanosleep",
		"readv", "writev", "epoll_wait", "epoll_create1", "eventfd2"} {
		for _, r := range p.Rules {
			if slices.Contains(r.Names, name) {
				t.Errorf("%s is in the production table (%v: %s)", name, r.Action, r.Reason)
			}
		}
	}
	for _, r := range p.Rules {
		if slices.Contains(r.Names, "prlimit64") && r.Action == Allow {
			t.Errorf("prlimit64 allowed when %v: only glibc reads limits after the filter", r.When)
		}
	}
}

func TestCheckRejects(t *testing.T) {
	tests := []struct {
		name string
		p    Policy
	}{
		{name: "no reason", p: Policy{Rules: []Rule{{Names: []string{"read"}, Action: Allow}}}},
		{name: "no names", p: Policy{Rules: []Rule{{Action: Allow, Reason: "r"}}}},
		{name: "empty name", p: Policy{Rules: []Rule{{Names: []string{""}, Action: Allow, Reason: "r"}}}},
		{name: "bad action", p: Policy{Rules: []Rule{{Names: []string{"read"}, Action: 42, Reason: "r"}}}},
		{name: "listed twice", p: Policy{Rules: []Rule{
			{Names: []string{"read"}, Action: Allow, Reason: "r"},
			{Names: []string{"write", "read"}, Action: EPERM, Reason: "r"}}}},
		{name: "unconditional after conditional", p: Policy{Rules: []Rule{
			{Names: []string{"read"}, Action: Allow, Reason: "r", When: []Cond{{Arg: 0, Op: Equal, Value: 1}}},
			{Names: []string{"read"}, Action: EPERM, Reason: "r"}}}},
		{name: "conditional after unconditional", p: Policy{Rules: []Rule{
			{Names: []string{"read"}, Action: EPERM, Reason: "r"},
			{Names: []string{"read"}, Action: Allow, Reason: "r", When: []Cond{{Arg: 0, Op: Equal, Value: 1}}}}}},
		{name: "argument 6", p: Policy{Rules: []Rule{
			{Names: []string{"read"}, Action: Allow, Reason: "r", When: []Cond{{Arg: 6, Op: Equal}}}}}},
		{name: "no op", p: Policy{Rules: []Rule{
			{Names: []string{"read"}, Action: Allow, Reason: "r", When: []Cond{{Arg: 0}}}}}},
		{name: "value outside mask", p: Policy{Rules: []Rule{
			{Names: []string{"read"}, Action: Allow, Reason: "r", When: []Cond{{Arg: 0, Op: MaskedEqual, Mask: 1, Value: 2}}}}}},
		{name: "NotListed alone", p: Policy{Rules: []Rule{
			{Names: []string{"read"}, Action: EPERM, Reason: "r", When: []Cond{{Arg: 0, Op: NotListed}}}}}},
		{name: "NotListed allows", p: Policy{Rules: []Rule{
			{Names: []string{"read"}, Action: EPERM, Reason: "r", When: []Cond{{Arg: 0, Op: Equal, Value: 1}}},
			{Names: []string{"read"}, Action: Allow, Reason: "r", When: []Cond{{Arg: 0, Op: NotListed}}}}}},
		{name: "NotListed with a value", p: Policy{Rules: []Rule{
			{Names: []string{"read"}, Action: Allow, Reason: "r", When: []Cond{{Arg: 0, Op: Equal, Value: 1}}},
			{Names: []string{"read"}, Action: EPERM, Reason: "r", When: []Cond{{Arg: 0, Op: NotListed, Value: 2}}}}}},
		{name: "NotListed beside another condition", p: Policy{Rules: []Rule{
			{Names: []string{"read"}, Action: Allow, Reason: "r", When: []Cond{{Arg: 0, Op: Equal, Value: 1}}},
			{Names: []string{"read"}, Action: EPERM, Reason: "r", When: []Cond{{Arg: 0, Op: NotListed}, {Arg: 1, Op: Equal}}}}}},
		{name: "NotListed twice", p: Policy{Rules: []Rule{
			{Names: []string{"read"}, Action: Allow, Reason: "r", When: []Cond{{Arg: 0, Op: Equal, Value: 1}}},
			{Names: []string{"read"}, Action: EPERM, Reason: "r", When: []Cond{{Arg: 0, Op: NotListed}}},
			{Names: []string{"read"}, Action: KillProcess, Reason: "r", When: []Cond{{Arg: 0, Op: NotListed}}}}}},
		{name: "pinned by a mask", p: Policy{Rules: []Rule{
			{Names: []string{"read"}, Action: Allow, Reason: "r", When: []Cond{{Arg: 0, Op: MaskedEqual, Mask: 1, Value: 1}}},
			{Names: []string{"read"}, Action: EPERM, Reason: "r", When: []Cond{{Arg: 0, Op: NotListed}}}}}},
		{name: "pinned on two arguments", p: Policy{Rules: []Rule{
			{Names: []string{"read"}, Action: Allow, Reason: "r", When: []Cond{{Arg: 1, Op: Equal, Value: 1}}},
			{Names: []string{"read"}, Action: EPERM, Reason: "r", When: []Cond{{Arg: 0, Op: NotListed}}}}}},
		{name: "value listed twice", p: Policy{Rules: []Rule{
			{Names: []string{"read"}, Action: Allow, Reason: "r", When: []Cond{{Arg: 0, Op: Equal, Value: 1}}},
			{Names: []string{"read"}, Action: KillProcess, Reason: "r", When: []Cond{{Arg: 0, Op: Equal, Value: 1}}},
			{Names: []string{"read"}, Action: EPERM, Reason: "r", When: []Cond{{Arg: 0, Op: NotListed}}}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.p.Check(); !errors.Is(err, ErrInvalidPolicy) {
				t.Errorf("Check() = %v, want ErrInvalidPolicy", err)
			}
		})
	}
}

// TestSignalSelfOnly: tgkill becomes conditional on the pid, the rest of the
// table is untouched, and the original policy is not modified.
func TestSignalSelfOnly(t *testing.T) {
	p := defaultOrSkip(t)
	q := p.SignalSelfOnly(1)
	if err := q.Check(); err != nil {
		t.Fatal(err)
	}
	if _, ok := q.ActionFor("tgkill"); ok {
		t.Error("tgkill still unconditional after SignalSelfOnly")
	}
	if a, ok := p.ActionFor("tgkill"); !ok || a != Allow {
		t.Errorf("SignalSelfOnly modified its receiver: tgkill = %v, %v", a, ok)
	}
	if a, _ := q.ActionFor("socket"); a != EPERM {
		t.Errorf("socket = %v after SignalSelfOnly, want EPERM", a)
	}
}
