package security

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agentbox/agentbox/seccomp"
)

// securityDoc is the threat model; the syscall table in it is generated from the policy.
var securityDoc = filepath.Join("..", "..", "docs", "SECURITY.md")

const (
	syscallsBegin = "<!-- syscalls:begin -->"
	syscallsEnd   = "<!-- syscalls:end -->"
)

// -update rewrites generated blocks of docs/SECURITY.md. Another test file of this package
// may register the same flag for its own block; whichever registers first serves both.
func init() {
	if flag.Lookup("update") == nil {
		flag.Bool("update", false, "rewrite the generated blocks of docs/SECURITY.md")
	}
}

func updateRequested() bool {
	f := flag.Lookup("update")
	return f != nil && f.Value.String() == "true"
}

// TestSyscallDocIsCurrent renders the child's seccomp policy (seccomp.Sandboxed, the one
// compiled into every task's filter) as Markdown between the syscalls markers of
// docs/SECURITY.md, and fails when the document says something else. Run with -update to
// rewrite the block.
func TestSyscallDocIsCurrent(t *testing.T) {
	doc, err := os.ReadFile(securityDoc)
	if err != nil {
		t.Fatalf("read %s: %v", securityDoc, err)
	}
	before, rest, ok1 := strings.Cut(string(doc), syscallsBegin+"\n")
	old, after, ok2 := strings.Cut(rest, syscallsEnd)
	if !ok1 || !ok2 {
		t.Fatalf("%s lacks the lines %s and %s", securityDoc, syscallsBegin, syscallsEnd)
	}
	fresh := renderPolicy(seccomp.Sandboxed())
	if old == fresh {
		return
	}
	if !updateRequested() {
		t.Fatalf("%s: the syscall table differs from seccomp.Sandboxed(); run `go test ./test/security/ -run TestSyscallDocIsCurrent -update`\n--- want\n%s", securityDoc, fresh)
	}
	out := before + syscallsBegin + "\n" + fresh + syscallsEnd + after
	if err := os.WriteFile(securityDoc, []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
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

// renderPolicy is the generated block: a table per action, one row per rule.
func renderPolicy(p seccomp.Policy) string {
	var b strings.Builder
	allowed := map[string]bool{}
	for _, r := range p.Rules {
		if r.Action == seccomp.Allow {
			for _, n := range r.Names {
				allowed[n] = true
			}
		}
	}
	fmt.Fprintf(&b, "Generated from `seccomp.Sandboxed()` by `TestSyscallDocIsCurrent` (`-update` rewrites it):\n"+
		"%d rules; %d syscalls can be allowed (some only with the arguments shown).\n", len(p.Rules), len(allowed))
	for _, s := range policySections {
		fmt.Fprintf(&b, "\n#### %s\n\n| syscalls | only when | reason |\n| --- | --- | --- |\n", s.title)
		for _, r := range p.Rules {
			if r.Action == s.action {
				fmt.Fprintf(&b, "| %s | %s | %s |\n", "`"+strings.Join(r.Names, "`, `")+"`", renderConds(r.When), cell(r.Reason))
			}
		}
	}
	return b.String()
}

// renderConds writes argument conditions the way seccomp compares them.
func renderConds(conds []seccomp.Cond) string {
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
		default:
			parts = append(parts, fmt.Sprintf("%s op%d %#x", arg, c.Op, c.Value))
		}
	}
	return "`" + strings.Join(parts, "` and `") + "`"
}

// cell escapes a table cell.
func cell(s string) string { return strings.ReplaceAll(s, "|", `\|`) }
