//go:build linux

package security

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/agentbox/agentbox/seccomp"
)

const (
	syscallsBegin = "<!-- syscalls:begin -->"
	syscallsEnd   = "<!-- syscalls:end -->"
)

// TestSyscallDocIsCurrent renders the child's seccomp policy (seccomp.Sandboxed, the one
// compiled into every task's filter) as Markdown between the syscalls markers of
// docs/SECURITY.md, and fails when the document says something else. Run with -update to
// rewrite the block.
func TestSyscallDocIsCurrent(t *testing.T) {
	syncDocBlock(t, syscallsBegin, syscallsEnd, renderPolicy(seccomp.Sandboxed(), "seccomp.Sandboxed()", "TestSyscallDocIsCurrent"),
		"go test ./test/security/ -run TestSyscallDocIsCurrent -update")
}

const (
	noNewExecBegin = "<!-- noexec:begin -->"
	noNewExecEnd   = "<!-- noexec:end -->"
)

// TestNoNewExecDocIsCurrent does the same for the filter stage two stacks on the allowlist
// before the guest's first instruction (seccomp.NoNewExec), between the noexec markers.
func TestNoNewExecDocIsCurrent(t *testing.T) {
	syncDocBlock(t, noNewExecBegin, noNewExecEnd, renderPolicy(seccomp.NoNewExec(), "seccomp.NoNewExec()", "TestNoNewExecDocIsCurrent"),
		"go test ./test/security/ -run TestNoNewExecDocIsCurrent -update")
}

// policySections order the rules by what they do; within each, the policy's own order.
var policySections = []struct {
	action seccomp.Action
	title  string
}{
	{seccomp.Allow, "Allowed"},
	{seccomp.EPERM, "Denied with EPERM"},
	{seccomp.KillProcess, "Kill the whole process (SIGSYS)"},
	{seccomp.ENOSYS, "ENOSYS by name (as for every syscall not listed)"},
}

// renderPolicy is the generated block: a table per action with rules, one row per rule.
func renderPolicy(p seccomp.Policy, source, test string) string {
	var b strings.Builder
	allowed := map[string]bool{}
	for _, r := range p.Rules {
		if r.Action == seccomp.Allow {
			for _, n := range r.Names {
				allowed[n] = true
			}
		}
	}
	fmt.Fprintf(&b, "Generated from `%s` by `%s` (`-update` rewrites it):\n", source, test)
	if p.Otherwise == seccomp.Allow {
		fmt.Fprintf(&b, "%d rules; every call they do not match is left to the filter below.\n", len(p.Rules))
	} else {
		fmt.Fprintf(&b, "%d rules; %d syscalls can be allowed (some only with the arguments shown).\n", len(p.Rules), len(allowed))
	}
	for _, s := range policySections {
		if !slices.ContainsFunc(p.Rules, func(r seccomp.Rule) bool { return r.Action == s.action }) {
			continue
		}
		fmt.Fprintf(&b, "\n#### %s\n\n| syscalls | only when | reason |\n| --- | --- | --- |\n", s.title)
		for _, r := range p.Rules {
			if r.Action == s.action {
				fmt.Fprintf(&b, "| %s | %s | %s |\n", "`"+strings.Join(r.Names, "`, `")+"`", renderConds(r.When, listed(p, r.Names)), cell(r.Reason))
			}
		}
	}
	return b.String()
}

// listed is what a NotListed condition of a rule naming names excludes: the values the
// other rules of the same syscalls compare with Equal.
func listed(p seccomp.Policy, names []string) []string {
	var vals []string
	for _, r := range p.Rules {
		if len(r.When) == 1 && r.When[0].Op == seccomp.Equal && slices.ContainsFunc(r.Names, func(n string) bool { return slices.Contains(names, n) }) {
			vals = append(vals, fmt.Sprintf("%#x", r.When[0].Value))
		}
	}
	return vals
}

// renderConds writes argument conditions the way seccomp compares them; a NotListed one
// names the values it leaves out.
func renderConds(conds []seccomp.Cond, listed []string) string {
	if len(conds) == 0 {
		return "always"
	}
	var parts []string
	for _, c := range conds {
		arg := fmt.Sprintf("arg%d", c.Arg)
		switch c.Op {
		case seccomp.Equal:
			parts = append(parts, fmt.Sprintf("%s == %#x", arg, c.Value))
		case seccomp.NotEqual:
			parts = append(parts, fmt.Sprintf("%s != %#x", arg, c.Value))
		case seccomp.MaskedEqual:
			parts = append(parts, fmt.Sprintf("%s & %#x == %#x", arg, c.Mask, c.Value))
		case seccomp.Greater:
			parts = append(parts, fmt.Sprintf("%s > %#x", arg, c.Value))
		case seccomp.Less:
			parts = append(parts, fmt.Sprintf("%s < %#x", arg, c.Value))
		case seccomp.NotListed:
			parts = append(parts, fmt.Sprintf("%s not in {%s}", arg, strings.Join(listed, ", ")))
		default:
			parts = append(parts, fmt.Sprintf("%s op%d %#x", arg, c.Op, c.Value))
		}
	}
	return "`" + strings.Join(parts, "` and `") + "`"
}

// cell escapes a table cell.
func cell(s string) string { return strings.ReplaceAll(s, "|", `\|`) }
