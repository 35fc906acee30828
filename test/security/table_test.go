//go:build linux

package security

import (
	"fmt"
	"strings"
	"testing"
)

const (
	attacksBegin = "<!-- attacks:begin -->"
	attacksEnd   = "<!-- attacks:end -->"
)

// attackTableMarkdown renders the attack table: #, attack, from, invariant, expected
// result, layer.
func attackTableMarkdown() string {
	var b strings.Builder
	b.WriteString("| # | attack | from | invariant | expected result | layer |\n")
	b.WriteString("| --- | --- | --- | --- | --- | --- |\n")
	for i, a := range attacks {
		fmt.Fprintf(&b, "| %d | %s | %s | %d | %s | %s |\n", i+1, mdCell(a.Name+": "+a.What), a.From, a.Invariant, mdCell(a.Expect), mdCell(a.Layer))
	}
	return b.String()
}

// mdCell escapes what would break a Markdown table cell.
func mdCell(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ").Replace(s)
}

// TestAttackTableDoc fails when docs/SECURITY.md's table differs from the attacks table;
// with -update it rewrites the part between the markers.
func TestAttackTableDoc(t *testing.T) {
	syncDocBlock(t, attacksBegin, attacksEnd, attackTableMarkdown(), "go test ./test/security -run TestAttackTableDoc -update")
}
