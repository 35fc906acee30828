package seccomp

import (
	"fmt"
	"slices"
)

// Action is what the filter does with a matching syscall.
//
// The zero value is ENOSYS, the policy's default, so a Rule whose Action was
// forgotten denies rather than allows.
type Action int

const (
	// ENOSYS fails the call with ENOSYS, as a kernel that lacks the syscall
	// would. It is the action for everything the policy does not name, so
	// newer syscalls (clone3, openat2…) send callers down their fallbacks.
	ENOSYS Action = iota
	// Allow lets the call through to the kernel.
	Allow
	// EPERM fails the call with EPERM: a deliberate denial of something the
	// kernel has but this sandbox forbids (sockets, namespaces, exec…).
	EPERM
	// KillProcess kills the whole process with SIGSYS. It is kept for calls
	// only an escape attempt would make; a dead task is easier to notice
	// than a failed call.
	KillProcess
)

// String names the action for messages and test output.
func (a Action) String() string {
	switch a {
	case ENOSYS:
		return "ENOSYS"
	case Allow:
		return "Allow"
	case EPERM:
		return "EPERM"
	case KillProcess:
		return "KillProcess"
	}
	return fmt.Sprintf("Action(%d)", int(a))
}

func (a Action) valid() bool { return a >= ENOSYS && a <= KillProcess }

// Op compares one syscall argument with a constant.
type Op int

const (
	// Equal matches when the argument equals Value.
	Equal Op = iota + 1
	// NotEqual matches when the argument differs from Value.
	NotEqual
	// MaskedEqual matches when argument&Mask equals Value. Masks also guard
	// against garbage in the upper half of 32-bit arguments.
	MaskedEqual
	// Greater matches when the argument, unsigned, is greater than Value.
	Greater
	// Less matches when the argument, unsigned, is less than Value.
	Less
	// NotListed matches when the argument equals none of the values the
	// syscall's other rules compare it with: the rest of a pinned set. Those
	// rules must each be one Equal on the same argument, so adding a value
	// (a test's extra rule) shrinks the rest; Compile spells the rest out as
	// ranges, since seccomp tests an argument once per rule. It must be its
	// rule's only condition, that rule must deny, and Value and Mask stay 0.
	NotListed
)

// Cond is one condition on one argument (0 to 5) of a syscall.
type Cond struct {
	Arg   uint
	Op    Op
	Value uint64
	// Mask is used only by MaskedEqual.
	Mask uint64
}

func (c Cond) check() error {
	if c.Arg > 5 {
		return fmt.Errorf("%w: argument index %d > 5", ErrInvalidPolicy, c.Arg)
	}
	if c.Op < Equal || c.Op > NotListed {
		return fmt.Errorf("%w: unknown comparison %d on argument %d", ErrInvalidPolicy, c.Op, c.Arg)
	}
	if c.Op == MaskedEqual && c.Value&^c.Mask != 0 {
		return fmt.Errorf("%w: value %#x has bits outside mask %#x", ErrInvalidPolicy, c.Value, c.Mask)
	}
	if c.Op == NotListed && (c.Value != 0 || c.Mask != 0) {
		return fmt.Errorf("%w: NotListed on argument %d takes no value or mask", ErrInvalidPolicy, c.Arg)
	}
	return nil
}

// Rule gives one Action to a set of syscalls.
//
// With no When conditions the rule covers every call of its syscalls. With
// conditions it covers only calls whose arguments meet all of them, and the
// same syscall may then appear in further conditional rules (clone is allowed
// with exactly the Go runtime's thread flags and denied with any other, see
// NotListed); calls that match none of its rules take the default action,
// ENOSYS.
type Rule struct {
	Names  []string
	Action Action
	// Reason says who needs the call, or why it is denied. Required.
	Reason string
	// When, if not empty, restricts the rule to calls meeting every condition.
	When []Cond
}

// Policy is the whole allowlist: data, not code, so it can be reviewed as a
// table, checked by tests and compiled by Compile.
type Policy struct {
	Rules []Rule
	// Otherwise is the action for a call no rule matches. The zero value,
	// ENOSYS, makes an allowlist; Allow makes a denylist, which only a filter
	// stacked on an allowlist may be (see NoNewExec): stacked filters can only
	// restrict. A rule with this action is documentation and compiles to nothing.
	Otherwise Action
}

// Check reports the first malformed entry: a rule without names or reason,
// an unknown action or condition, a syscall named by an unconditional rule
// and by any other rule (the later one would silently lose), or a NotListed
// rule whose syscall is not pinned to a set of values (see NotListed).
func (p Policy) Check() error {
	if p.Otherwise != ENOSYS && p.Otherwise != Allow {
		return fmt.Errorf("%w: the action for unmatched calls must be ENOSYS or Allow, not %v", ErrInvalidPolicy, p.Otherwise)
	}
	uncond := map[string]bool{}
	cond := map[string]bool{}
	for i, r := range p.Rules {
		if err := r.check(); err != nil {
			return fmt.Errorf("rule %d %v: %w", i, r.Names, err)
		}
		for _, n := range r.Names {
			if uncond[n] || (len(r.When) == 0 && cond[n]) {
				return fmt.Errorf("%w: syscall %q listed twice (rule %d)", ErrInvalidPolicy, n, i)
			}
			if len(r.When) == 0 {
				uncond[n] = true
			} else {
				cond[n] = true
			}
		}
	}
	for _, r := range p.Rules {
		for _, n := range r.Names {
			if _, err := p.pinned(n); err != nil {
				return err
			}
		}
	}
	return nil
}

func (r Rule) check() error {
	if len(r.Names) == 0 {
		return fmt.Errorf("%w: rule names no syscall", ErrInvalidPolicy)
	}
	if r.Reason == "" {
		return fmt.Errorf("%w: rule has no reason", ErrInvalidPolicy)
	}
	if !r.Action.valid() {
		return fmt.Errorf("%w: unknown action %v", ErrInvalidPolicy, r.Action)
	}
	for _, c := range r.When {
		if err := c.check(); err != nil {
			return err
		}
	}
	if slices.ContainsFunc(r.Names, func(n string) bool { return n == "" }) {
		return fmt.Errorf("%w: empty syscall name", ErrInvalidPolicy)
	}
	return nil
}

// ActionFor returns the action of the unconditional rule naming syscall, and
// false when no unconditional rule names it. Tests and `agentbox check` use it
// to explain the policy without compiling it.
func (p Policy) ActionFor(syscall string) (Action, bool) {
	for _, r := range p.Rules {
		if len(r.When) == 0 && slices.Contains(r.Names, syscall) {
			return r.Action, true
		}
	}
	return ENOSYS, false
}

// SignalSelfOnly returns a copy of p in which tgkill is allowed only when its
// first argument (the thread group) is pid, and fails with EPERM otherwise.
//
// The Go runtime preempts its own threads with tgkill(getpid(), tid, SIGURG),
// so tgkill must stay, but the pid is not known when Default is built. A child
// that is the init of its own pid namespace always has pid 1, so the
// supervisor can compile Default().SignalSelfOnly(1) once for every task.
func (p Policy) SignalSelfOnly(pid int) Policy {
	rules := make([]Rule, 0, len(p.Rules)+2)
	for _, r := range p.Rules {
		r.Names = slices.DeleteFunc(slices.Clone(r.Names), func(n string) bool { return n == "tgkill" })
		if len(r.Names) > 0 {
			rules = append(rules, r)
		}
	}
	self := uint64(pid)
	rules = append(rules,
		Rule{Names: []string{"tgkill"}, Action: Allow, When: []Cond{{Arg: 0, Op: Equal, Value: self}},
			Reason: "Go runtime preemption and raise(): signals to threads of this process only"},
		Rule{Names: []string{"tgkill"}, Action: EPERM, When: []Cond{{Arg: 0, Op: NotEqual, Value: self}},
			Reason: "no signals to other processes (invariant 4)"},
	)
	return Policy{Rules: rules, Otherwise: p.Otherwise}
}
