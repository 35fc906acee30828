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
	// In the cgroup-v2 VM there is no Go toolchain: test/vm/cgroupv2.sh builds the child
	// beside this test binary and names it here.
	child, prebuilt := os.LookupEnv("AGENTBOX_TEST_CHILD")
	_, noGo := exec.LookPath("go")
	if !prebuilt {
		if noGo != nil {
			t.Skip("no Go toolchain and no AGENTBOX_TEST_CHILD (a test binary copied alone)")
		}
		child = filepath.Join(dir, ChildName)
		buildChild(t, child, "-buildvcs=false") // a test binary carries no VCS facts, so neither may the child
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
	others := []string{"/bin/sh", filepath.Join(dir, "missing")}
	if noGo == nil {
		// Another build: the same source stamped with its VCS revision (this test binary
		// has none), as a child left from an older checkout would be.
		stamped := filepath.Join(dir, "stamped")
		buildChild(t, stamped, "-buildvcs=true")
		others = append(others, stamped)
	}
	for _, other := range others {
		_, err := New(Config{CacheDir: t.TempDir(), ChildBinary: other})
		if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), other) {
			t.Errorf("New with child %s: %v, want ErrUnsupported naming it", other, err)
		}
	}
}

func buildChild(t *testing.T, out, vcs string) {
	t.Helper()
	build := exec.Command("go", "build", "-trimpath", vcs, "-o", out, "../cmd/agentbox-init")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build agentbox-init %s (the stamped one needs the git checkout): %v\n%s", vcs, err, b)
	}
}

// TestExecInPlace: with ExecInPlace the child runs from the binary file itself, which New
// accepts only when it is root's alone to change.
func TestExecInPlace(t *testing.T) {
	privtest.RequireRoot(t)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil { // the task's uid must reach the copies
		t.Fatal(err)
	}
	copyOf := func(name string, mode os.FileMode, uid int) string {
		t.Helper()
		b, err := os.ReadFile(self)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(p, uid, 0); err != nil {
			t.Fatal(err)
		}
		return p
	}
	module := readModule(t, "../testdata/modules/hello.wasm")
	for _, child := range []string{"", copyOf("root-0755", 0o755, 0)} {
		sb, err := New(Config{ExecInPlace: true, ChildBinary: child})
		if err != nil {
			t.Fatalf("New in place from %q: %v", child, err)
		}
		res, err := sb.Run(context.Background(), Spec{Module: module})
		sb.Close()
		if err != nil || res.Outcome != outcome.OK || string(res.Stdout) != "hello from wasm\n" {
			t.Fatalf("run in place from %q: %s (%s) %q, %v", child, res.Outcome, res.Message, res.Stdout, err)
		}
	}
	for _, bad := range []string{copyOf("group-writable", 0o775, 0), copyOf("world-writable", 0o757, 0), copyOf("user-owned", 0o755, 1000)} {
		sb, err := New(Config{ExecInPlace: true, ChildBinary: bad})
		if err == nil {
			sb.Close()
		}
		if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), bad) {
			t.Errorf("New in place from %s: %v, want ErrUnsupported naming it", bad, err)
		}
	}
}
