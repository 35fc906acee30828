package security

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// -update rewrites the attack table in docs/SECURITY.md instead of comparing it. Other
// files of this package may register the same flag for their own blocks of that document;
// whichever registers first serves all (a second flag.Bool would panic).
func init() {
	if flag.Lookup("update") == nil {
		flag.Bool("update", false, "rewrite the generated blocks of docs/SECURITY.md")
	}
}

// updating reports whether -update was given.
func updating() bool {
	f := flag.Lookup("update")
	return f != nil && f.Value.String() == "true"
}

const (
	docPath    = "../../docs/SECURITY.md"
	beginMark  = "<!-- attacks:begin -->"
	endMark    = "<!-- attacks:end -->"
	docMinimal = "# Security\n\n" + beginMark + "\n" + endMark + "\n"
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
// with -update it rewrites the part between the markers (creating a minimal file, or
// appending the markers, if they are missing) and leaves the rest of the file alone.
func TestAttackTableDoc(t *testing.T) {
	doc, err := os.ReadFile(docPath)
	if os.IsNotExist(err) && updating() {
		doc, err = []byte(docMinimal), nil
	}
	if err != nil {
		t.Fatalf("read %s: %v (run with -update to create it)", docPath, err)
	}
	if !bytes.Contains(doc, []byte(beginMark)) && updating() {
		doc = append(doc, "\n"+beginMark+"\n"+endMark+"\n"...)
	}
	before, rest, ok1 := bytes.Cut(doc, []byte(beginMark))
	current, after, ok2 := bytes.Cut(rest, []byte(endMark))
	if !ok1 || !ok2 {
		t.Fatalf("%s lacks the markers %s and %s (run with -update)", docPath, beginMark, endMark)
	}
	want := "\n" + attackTableMarkdown()
	if string(current) == want {
		return
	}
	if !updating() {
		t.Fatalf("%s: the attack table differs from the attacks in attack_table_test.go; run\n"+
			"  go test ./test/security -run TestAttackTableDoc -update", docPath)
	}
	out := bytes.Join([][]byte{before, []byte(beginMark), []byte(want), []byte(endMark), after}, nil)
	if err := os.MkdirAll(filepath.Dir(docPath), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(docPath, out, 0o644); err != nil {
		t.Fatal(err)
	}
}
