//go:build linux

package security

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// securityDoc is the threat model; its attack table and syscall table are generated from
// this package's tables, so document and tests cannot drift.
var securityDoc = filepath.Join("..", "..", "docs", "SECURITY.md")

// update makes the doc-sync tests rewrite their block instead of comparing it.
var update = flag.Bool("update", false, "rewrite the generated blocks of docs/SECURITY.md")

// syncDocBlock compares the text between the lines begin and end of docs/SECURITY.md with
// want; with -update it rewrites that block and leaves the rest of the file alone.
func syncDocBlock(t *testing.T, begin, end, want, how string) {
	t.Helper()
	doc, err := os.ReadFile(securityDoc)
	if err != nil {
		t.Fatalf("read %s: %v", securityDoc, err)
	}
	before, rest, ok1 := strings.Cut(string(doc), begin+"\n")
	current, after, ok2 := strings.Cut(rest, end)
	if !ok1 || !ok2 {
		t.Fatalf("%s lacks the lines %s and %s", securityDoc, begin, end)
	}
	if current == want {
		return
	}
	if !*update {
		t.Fatalf("%s: the block %s differs from the tests' table; run\n  %s\n--- want\n%s", securityDoc, begin, how, want)
	}
	if err := os.WriteFile(securityDoc, []byte(before+begin+"\n"+want+end+after), 0o644); err != nil {
		t.Fatal(err)
	}
}
