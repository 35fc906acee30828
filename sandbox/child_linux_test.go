package sandbox

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agentbox/agentbox/internal/privtest"
	"github.com/agentbox/agentbox/outcome"
)

// TestPrepare: Prepare compiles a valid module into the cache without running it (the
// next run finds the code there), and refuses an invalid one with the reason.
func TestPrepare(t *testing.T) {
	privtest.RequireRoot(t)
	cache := t.TempDir()
	sb := newTestSandbox(t, cache)
	tests := []struct {
		name   string
		module string
		want   outcome.Outcome
	}{
		{name: "valid", module: "../testdata/modules/hello.wasm", want: outcome.OK},
		{name: "garbage", module: "../testdata/modules/invalid.wasm", want: outcome.InvalidModule},
		{name: "no _start", module: "../testdata/modules/nostart.wasm", want: outcome.InvalidModule},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := sb.Prepare(context.Background(), readModule(t, tt.module))
			if err != nil || res.Outcome != tt.want {
				t.Fatalf("Prepare: %s (%s), %v; want %s", res.Outcome, res.Message, err, tt.want)
			}
		})
	}
	res, err := sb.Run(context.Background(), Spec{Module: readModule(t, "../testdata/modules/hello.wasm")})
	if err != nil || res.Outcome != outcome.OK || res.Usage.CompileMS != 0 {
		t.Errorf("run after Prepare: %s, compile %d ms, %v; want ok with nothing left to compile", res.Outcome, res.Usage.CompileMS, err)
	}
}

// TestChildBinary: a child binary of the same build runs tasks; anything else is refused
// by New, naming the binary.
func TestChildBinary(t *testing.T) {
	privtest.RequireRoot(t)
	dir := t.TempDir()
	child := filepath.Join(dir, ChildName)
	// -buildvcs=false: a test binary carries no VCS facts, so neither may the child.
	build := exec.Command("go", "build", "-trimpath", "-buildvcs=false", "-o", child, "../cmd/agentbox-init")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build agentbox-init: %v\n%s", err, out)
	}
	sb, err := New(Config{CacheDir: t.TempDir(), ChildBinary: child})
	if err != nil {
		t.Fatalf("New with the same build as child: %v", err)
	}
	defer sb.Close()
	res, err := sb.Run(context.Background(), Spec{Module: readModule(t, "../testdata/modules/hello.wasm")})
	if err != nil || res.Outcome != outcome.OK || string(res.Stdout) != "hello from wasm\n" {
		t.Fatalf("run from agentbox-init: %s (%s) %q, %v", res.Outcome, res.Message, res.Stdout, err)
	}
	// Another build: the same source stamped with its VCS revision (this test binary has
	// none), as a child left from an older checkout would be.
	stamped := filepath.Join(dir, "stamped")
	build = exec.Command("go", "build", "-trimpath", "-buildvcs=true", "-o", stamped, "../cmd/agentbox-init")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build a stamped agentbox-init (needs the git checkout): %v\n%s", err, out)
	}
	for _, other := range []string{"/bin/sh", stamped, filepath.Join(dir, "missing")} {
		_, err := New(Config{CacheDir: t.TempDir(), ChildBinary: other})
		if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), other) {
			t.Errorf("New with child %s: %v, want ErrUnsupported naming it", other, err)
		}
	}
}
