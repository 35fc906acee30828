package wasm

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/agentbox/agentbox/outcome"
)

const modulesDir = "../testdata/modules"

// load reads a test module, failing the test if it is missing.
func load(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(modulesDir, name))
	if err != nil {
		t.Fatalf("reading test module: %v", err)
	}
	return b
}

func TestClassifyModules(t *testing.T) {
	tests := []struct {
		name        string
		module      string
		cfg         Config
		want        outcome.Outcome
		exitCode    uint32
		message     string // fragment of Result.Message
		stdout      string // exact, if non-empty
		stdoutTrunc bool
	}{
		{name: "hello prints and returns", module: "hello.wasm", want: outcome.OK, message: "returned from _start", stdout: "hello from wasm\n"},
		{name: "proc_exit 3", module: "exit3.wasm", want: outcome.Exit, exitCode: 3, message: "proc_exit(3)"},
		{name: "proc_exit with wazero's cancel code is still an exit", module: "exitmax.wasm", cfg: Config{CloseOnContextDone: true}, want: outcome.Exit, exitCode: 0xffffffff, message: "proc_exit(4294967295)"},
		{name: "unreachable traps", module: "trap.wasm", want: outcome.Trap, message: "guest trapped: unreachable"},
		{name: "out of bounds load traps", module: "oob.wasm", want: outcome.Trap, message: "out of bounds memory access"},
		{name: "infinite recursion traps", module: "stackoverflow.wasm", want: outcome.Trap, message: "stack overflow"},
		{name: "growmem hits a 16 MiB cap", module: "growmem.wasm", cfg: Config{MemoryLimit: 16 << 20}, want: outcome.MemoryLimit,
			message: "linear memory grow to 16842752 bytes refused: limit 16777216 bytes"},
		{name: "initial memory over the cap", module: "bigmin.wasm", cfg: Config{MemoryLimit: 16 << 20}, want: outcome.MemoryLimit,
			message: "linear memory of 33554432 bytes needed at start: limit 16777216 bytes"},
		{name: "initial memory within the cap", module: "bigmin.wasm", cfg: Config{MemoryLimit: 32 << 20}, want: outcome.OK},
		{name: "spam hits the output cap", module: "spam.wasm", cfg: Config{OutputLimit: 100}, want: outcome.OutputLimit,
			message: "more than 100 bytes to stdout", stdoutTrunc: true},
		{name: "stderr then exit 1", module: "stderr.wasm", want: outcome.Exit, exitCode: 1},
		{name: "garbage bytes", module: "invalid.wasm", want: outcome.InvalidModule, message: "invalid magic number"},
		{name: "no _start", module: "nostart.wasm", want: outcome.InvalidModule, message: "_start"},
		{name: "unknown import", module: "badimport.wasm", want: outcome.InvalidModule, message: "env.nope"},
		{name: "shared memory", module: "sharedmem.wasm", want: outcome.InvalidModule, message: "shared memory"},
		{name: "atomics", module: "atomics.wasm", want: outcome.InvalidModule, message: `feature "threads" is disabled`},
		{name: "table.grow by 4e9 is refused, host lives", module: "tablegrow.wasm", want: outcome.OK},
		{name: "echo copies stdin", module: "echo.wasm", cfg: Config{Stdin: strings.NewReader("ping\npong\n")}, want: outcome.OK, stdout: "ping\npong\n"},
		{name: "args reach the guest", module: "args.wasm", cfg: Config{Args: []string{"prog", "a b", "c"}}, want: outcome.OK, stdout: "prog\na b\nc\n"},
		{name: "env is exactly what was given", module: "env.wasm", cfg: Config{Env: []string{"A=1", "B=two=2"}}, want: outcome.OK, stdout: "A=1\nB=two=2\n"},
		{name: "bad env entry is our error", module: "env.wasm", cfg: Config{Env: []string{"NOEQUALS"}}, want: outcome.SandboxError, message: "NOEQUALS"},
		{name: "fixed loop finishes", module: "count.wasm", want: outcome.OK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout bytes.Buffer
			tt.cfg.Stdout = &stdout
			got := Run(context.Background(), load(t, tt.module), tt.cfg)
			if got.Outcome != tt.want || got.ExitCode != tt.exitCode {
				t.Fatalf("got %s (exit %d): %q; want %s (exit %d)", got.Outcome, got.ExitCode, got.Message, tt.want, tt.exitCode)
			}
			if !strings.Contains(got.Message, tt.message) {
				t.Errorf("message %q does not contain %q", got.Message, tt.message)
			}
			if tt.stdout != "" && stdout.String() != tt.stdout {
				t.Errorf("stdout = %q, want %q", stdout.String(), tt.stdout)
			}
			if got.StdoutTruncated != tt.stdoutTrunc || got.StderrTruncated {
				t.Errorf("truncated stdout=%v stderr=%v, want stdout=%v stderr=false", got.StdoutTruncated, got.StderrTruncated, tt.stdoutTrunc)
			}
		})
	}
}

func TestOutputLimit(t *testing.T) {
	tests := []struct {
		name      string
		module    string
		limit     int64
		want      outcome.Outcome
		delivered string // exact stdout+stderr
		stdoutCut bool
		stderrCut bool
		message   string
	}{
		{name: "hello fits exactly", module: "hello.wasm", limit: 16, want: outcome.OK, delivered: "hello from wasm\n"},
		{name: "hello one byte over", module: "hello.wasm", limit: 15, want: outcome.OutputLimit, delivered: "hello from wasm", stdoutCut: true,
			message: "guest wrote more than 15 bytes to stdout: output limit 15 bytes"},
		{name: "spam cut mid-write", module: "spam.wasm", limit: 1000, want: outcome.OutputLimit, stdoutCut: true},
		{name: "spam cut on a write boundary", module: "spam.wasm", limit: 128, want: outcome.OutputLimit, stdoutCut: true},
		{name: "stderr capped", module: "stderr.wasm", limit: 2, want: outcome.OutputLimit, delivered: "oo", stderrCut: true,
			message: "to stderr"},
		{name: "stderr within cap keeps the exit", module: "stderr.wasm", limit: 5, want: outcome.Exit, delivered: "oops\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			got := Run(context.Background(), load(t, tt.module), Config{Stdout: &out, Stderr: &out, OutputLimit: tt.limit})
			if got.Outcome != tt.want {
				t.Fatalf("got %s: %q; want %s", got.Outcome, got.Message, tt.want)
			}
			if got.StdoutTruncated != tt.stdoutCut || got.StderrTruncated != tt.stderrCut {
				t.Errorf("truncated stdout=%v stderr=%v, want %v %v", got.StdoutTruncated, got.StderrTruncated, tt.stdoutCut, tt.stderrCut)
			}
			if tt.stdoutCut || tt.stderrCut {
				if int64(out.Len()) != tt.limit {
					t.Errorf("delivered %d bytes, want exactly the limit %d", out.Len(), tt.limit)
				}
			}
			if tt.delivered != "" && out.String() != tt.delivered {
				t.Errorf("delivered %q, want %q", out.String(), tt.delivered)
			}
			if !strings.Contains(got.Message, tt.message) {
				t.Errorf("message %q does not contain %q", got.Message, tt.message)
			}
		})
	}
}

func TestMemoryLimit(t *testing.T) {
	tests := []struct {
		name    string
		limit   uint64
		refused uint64 // first size the cap refused
		peak    uint64
	}{
		// growmem starts at 1 page and adds 16: 1, 17, ..., 241 pages fit in 256; 257 does not.
		{name: "16 MiB", limit: 16 << 20, refused: 257 * pageSize, peak: 241 * pageSize},
		// A cap that is not a whole number of pages: 2 MiB + 1 byte still refuses 33 pages.
		{name: "2 MiB plus a byte", limit: 2<<20 + 1, refused: 33 * pageSize, peak: 17 * pageSize},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Run(context.Background(), load(t, "growmem.wasm"), Config{MemoryLimit: tt.limit})
			if got.Outcome != outcome.MemoryLimit {
				t.Fatalf("got %s: %q; want memory_limit", got.Outcome, got.Message)
			}
			want := "linear memory grow to " + strconv.FormatUint(tt.refused, 10) + " bytes refused: limit " + strconv.FormatUint(tt.limit, 10) + " bytes"
			if !strings.HasPrefix(got.Message, want) {
				t.Errorf("message %q does not start with %q", got.Message, want)
			}
			if got.PeakMemoryBytes != tt.peak {
				t.Errorf("peak memory %d bytes, want %d", got.PeakMemoryBytes, tt.peak)
			}
		})
	}
}

func TestContext(t *testing.T) {
	tests := []struct {
		name  string
		close bool
		ctx   func() (context.Context, context.CancelFunc)
		want  outcome.Outcome
	}{
		{name: "deadline stops loop", close: true, want: outcome.Timeout, ctx: func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 50*time.Millisecond)
		}},
		{name: "cancel stops loop", close: true, want: outcome.Cancelled, ctx: func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(50*time.Millisecond, cancel)
			return ctx, cancel
		}},
		{name: "already cancelled never starts", close: false, want: outcome.Cancelled, ctx: func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			return ctx, cancel
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := tt.ctx()
			defer cancel()
			got := Run(ctx, load(t, "loop.wasm"), Config{CloseOnContextDone: tt.close})
			if got.Outcome != tt.want {
				t.Fatalf("got %s: %q; want %s", got.Outcome, got.Message, tt.want)
			}
		})
	}
}

func TestCompileErrors(t *testing.T) {
	tests := []struct {
		name   string
		module string
		cfg    Config
		want   outcome.Outcome
		is     error
	}{
		{name: "no start", module: "nostart.wasm", want: outcome.InvalidModule, is: ErrNoStart},
		{name: "unknown import", module: "badimport.wasm", want: outcome.InvalidModule, is: ErrUnknownImport},
		{name: "initial memory over cap", module: "hello.wasm", cfg: Config{MemoryLimit: 1000}, want: outcome.MemoryLimit, is: ErrMemoryLimit},
		{name: "negative output limit", module: "hello.wasm", cfg: Config{OutputLimit: -1}, want: outcome.SandboxError, is: ErrConfig},
		{name: "clock resolution too coarse", module: "hello.wasm", cfg: Config{ClockResolution: 5 * time.Second}, want: outcome.SandboxError, is: ErrConfig},
		{name: "cache dir is a file", module: "hello.wasm", cfg: Config{CacheDir: "wasm_test.go"}, want: outcome.SandboxError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Compile(context.Background(), load(t, tt.module), tt.cfg)
			if err == nil {
				p.Close(context.Background())
				t.Fatal("Compile succeeded, want an error")
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v is %T, want *Error", err, err)
			}
			if e.Outcome != tt.want {
				t.Errorf("outcome %s (%s), want %s", e.Outcome, e.Message, tt.want)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %v is not %v", err, tt.is)
			}
		})
	}
}

func TestProgramRunsOnce(t *testing.T) {
	ctx := context.Background()
	p, err := Compile(ctx, load(t, "hello.wasm"), Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(ctx)
	if got := p.Run(ctx); got.Outcome != outcome.OK {
		t.Fatalf("first run: %s: %s", got.Outcome, got.Message)
	}
	if got := p.Run(ctx); got.Outcome != outcome.SandboxError || !strings.Contains(got.Message, ErrAlreadyRan.Error()) {
		t.Fatalf("second run: %s: %s; want sandbox_error naming %v", got.Outcome, got.Message, ErrAlreadyRan)
	}
}

func TestCompilationCache(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	for i := range 2 {
		var out bytes.Buffer
		got := Run(ctx, load(t, "hello.wasm"), Config{CacheDir: dir, Stdout: &out})
		if got.Outcome != outcome.OK || out.String() != "hello from wasm\n" {
			t.Fatalf("run %d: %s: %s, stdout %q", i, got.Outcome, got.Message, out.String())
		}
		entries, err := os.ReadDir(dir)
		if err != nil || len(entries) == 0 {
			t.Fatalf("run %d: cache dir holds %d entries (err %v), want some", i, len(entries), err)
		}
	}
}

// TestCacheFailureIsOurs: a compilation cache that cannot be written (here its version
// folder is a plain file) fails the compile with sandbox_error naming the cache, never
// invalid_module: the module is fine, the host is not.
func TestCacheFailureIsOurs(t *testing.T) {
	dir := t.TempDir()
	probe := filepath.Join(t.TempDir(), "probe")
	if got := Run(context.Background(), load(t, "hello.wasm"), Config{CacheDir: probe}); got.Outcome != outcome.OK {
		t.Fatalf("probe run: %s %q", got.Outcome, got.Message)
	}
	versions, err := os.ReadDir(probe)
	if err != nil || len(versions) != 1 {
		t.Fatalf("probe cache holds %v (%v): want wazero's one version folder", versions, err)
	}
	if err := os.WriteFile(filepath.Join(dir, versions[0].Name()), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	got := Run(context.Background(), load(t, "hello.wasm"), Config{CacheDir: dir})
	if got.Outcome != outcome.SandboxError || !strings.Contains(got.Message, "compilation cache") {
		t.Fatalf("unwritable cache: %s %q; want sandbox_error naming the compilation cache", got.Outcome, got.Message)
	}
}
