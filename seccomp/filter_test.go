//go:build linux && cgo

package seccomp

import (
	"bytes"
	"testing"
)

// TestEmbeddedFilterIsCurrent fails when the policy table changed without `make generate`.
func TestEmbeddedFilterIsCurrent(t *testing.T) {
	want, err := Compile(Sandboxed())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(Filter(), want) {
		t.Fatalf("embedded filter (%d instructions) differs from Compile(Sandboxed()) (%d): run make generate", len(Filter())/8, len(want)/8)
	}
}

// TestEmbeddedNoNewExecIsCurrent does the same for the filter stacked before the guest runs.
func TestEmbeddedNoNewExecIsCurrent(t *testing.T) {
	want, err := Compile(NoNewExec())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(NoNewExecFilter(), want) {
		t.Fatalf("embedded no-new-exec filter (%d instructions) differs from Compile(NoNewExec()) (%d): run make generate", len(NoNewExecFilter())/8, len(want)/8)
	}
}
