package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"github.com/agentbox/agentbox/internal/privtest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agentbox/agentbox/outcome"
)

// The CLI contract (README): users script against these flags, JSON names and exit codes,
// so these tests run the real binary, built static as the Makefile builds it.

// agentbox builds the CLI once per test binary run.
func agentbox(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(os.TempDir(), "agentbox-clitest-"+strings.ReplaceAll(t.Name(), "/", "_"))
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	t.Cleanup(func() { os.Remove(bin) })
	return bin
}

type cliResult struct {
	code           int
	stdout, stderr string
}

func run(t *testing.T, bin string, args ...string) cliResult {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	code := 0
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run %v: %v", args, err)
	}
	return cliResult{code: code, stdout: out.String(), stderr: errb.String()}
}

func mod(name string) string { return filepath.Join("..", "..", "testdata", "modules", name) }

func TestBadInput(t *testing.T) {
	bin := agentbox(t)
	tests := []struct {
		name string
		args []string
		want []string // fragments of stderr
	}{
		{name: "unknown size unit", args: []string{"run", "--memory", "64Q", mod("hello.wasm")}, want: []string{"--memory", "64Q"}},
		{name: "bad output limit", args: []string{"run", "--output-limit", "lots", mod("hello.wasm")}, want: []string{"--output-limit", "lots"}},
		{name: "memory below the runtime's need", args: []string{"run", "--memory", "1Mi", mod("hello.wasm")}, want: []string{"memory 1Mi"}},
		{name: "zero cpus", args: []string{"run", "--cpus", "0", mod("hello.wasm")}, want: []string{"--cpus 0"}},
		{name: "bad duration", args: []string{"run", "--timeout", "soon", mod("hello.wasm")}, want: []string{"timeout", "soon"}},
		{name: "env without =", args: []string{"run", "--env", "NOPE", mod("hello.wasm")}, want: []string{"--env", "NOPE", "KEY=VALUE"}},
		{name: "missing module", args: []string{"run", "/nonexistent.wasm"}, want: []string{"cannot read module", "/nonexistent.wasm"}},
		{name: "dir that does not exist", args: []string{"run", "--dir", "/nonexistent", mod("hello.wasm")}, want: []string{"--dir", "/nonexistent"}},
		{name: "dir with too many parts", args: []string{"run", "--dir", "/tmp:/a:/b:ro", mod("hello.wasm")}, want: []string{"HOST[:GUEST][:ro]"}},
		{name: "no module", args: []string{"run"}, want: []string{"requires at least 1 arg"}},
		{name: "unknown flag", args: []string{"run", "--memroy", "1Gi", mod("hello.wasm")}, want: []string{"--memroy"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := run(t, bin, tt.args...)
			if r.code != exitUsage {
				t.Fatalf("exit code %d, want %d (usage); stderr %q", r.code, exitUsage, r.stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr %q does not name %q", r.stderr, w)
				}
			}
		})
	}
}

func TestRunVerdicts(t *testing.T) {
	privtest.RequireRoot(t)
	bin := agentbox(t)
	state := t.TempDir()
	tests := []struct {
		name  string
		args  []string
		want  outcome.Outcome
		code  int
		check func(t *testing.T, v jsonVerdict)
	}{
		{name: "ok", args: []string{mod("hello.wasm")}, want: outcome.OK, code: 0, check: func(t *testing.T, v jsonVerdict) {
			if v.Stdout != "hello from wasm\n" || v.Limits.Memory != "256Mi" || v.Usage.WallMS <= 0 {
				t.Errorf("stdout %q limits %+v usage %+v", v.Stdout, v.Limits, v.Usage)
			}
		}},
		{name: "guest exit code passes through", args: []string{mod("exit3.wasm")}, want: outcome.Exit, code: 3},
		{name: "trap", args: []string{mod("trap.wasm")}, want: outcome.Trap, code: exitTrap},
		{name: "invalid module", args: []string{mod("invalid.wasm")}, want: outcome.InvalidModule, code: exitInvalidModule},
		{name: "memory past 64Mi", args: []string{"--memory", "64Mi", mod("growmem.wasm")}, want: outcome.MemoryLimit, code: exitMemoryLimit},
		{name: "endless loop, 1s timeout, answered under 2s", args: []string{"--timeout", "1s", mod("loop.wasm")}, want: outcome.Timeout, code: exitTimeout,
			check: func(t *testing.T, v jsonVerdict) {
				if v.Usage.WallMS >= 2000 {
					t.Errorf("timeout verdict after %d ms; the contract is under 2 s", v.Usage.WallMS)
				}
			}},
		{name: "cpu time", args: []string{"--cpu-time", "500ms", mod("loop.wasm")}, want: outcome.CPULimit, code: exitCPULimit},
		{name: "output cap", args: []string{"--output-limit", "1Ki", mod("spam.wasm")}, want: outcome.OutputLimit, code: exitOutputLimit,
			check: func(t *testing.T, v jsonVerdict) {
				if len(v.Stdout) != 1024 || !v.StdoutTruncated {
					t.Errorf("stdout %d bytes truncated=%t; want exactly 1024 and truncated", len(v.Stdout), v.StdoutTruncated)
				}
			}},
		{name: "args and env reach the guest, host env does not", args: []string{"--env", "A=1", mod("env.wasm")}, want: outcome.OK, code: 0,
			check: func(t *testing.T, v jsonVerdict) {
				if v.Stdout != "A=1\n" {
					t.Errorf("guest env %q, want exactly A=1", v.Stdout)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"run", "--json", "--state-dir", state, "--cache-dir", ""}, tt.args...)
			r := run(t, bin, args...)
			var v jsonVerdict
			if err := json.Unmarshal([]byte(r.stdout), &v); err != nil {
				t.Fatalf("stdout is not one JSON object: %v\n%s\nstderr: %s", err, r.stdout, r.stderr)
			}
			if v.Outcome != tt.want || r.code != tt.code || v.Message == "" {
				t.Fatalf("outcome %s (exit %d) %q; want %s (exit %d)", v.Outcome, r.code, v.Message, tt.want, tt.code)
			}
			if tt.check != nil {
				tt.check(t, v)
			}
		})
	}
}

func TestPlainOutputAndVerdictLine(t *testing.T) {
	privtest.RequireRoot(t)
	bin := agentbox(t)
	r := run(t, bin, "run", "--state-dir", t.TempDir(), mod("stderr.wasm"))
	if r.code != 1 || r.stdout != "" || !strings.Contains(r.stderr, "oops\n") {
		t.Fatalf("exit %d stdout %q stderr %q; want exit 1 and the guest's stderr streamed", r.code, r.stdout, r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
	if last := lines[len(lines)-1]; !strings.HasPrefix(last, "agentbox: exit: ") {
		t.Fatalf("last stderr line %q; want the verdict line", last)
	}
}

func TestStdinAndDir(t *testing.T) {
	privtest.RequireRoot(t)
	bin := agentbox(t)
	in := filepath.Join(t.TempDir(), "in.txt")
	os.WriteFile(in, []byte("from a file\n"), 0o644)
	r := run(t, bin, "run", "--state-dir", t.TempDir(), "--stdin", in, mod("echo.wasm"))
	if r.code != 0 || r.stdout != "from a file\n" {
		t.Fatalf("echo via --stdin: exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "in.txt"), []byte("data"), 0o644)
	// The task's host uid must be able to write there: give the directory to everyone.
	os.Chmod(dir, 0o777)
	r = run(t, bin, "run", "--state-dir", t.TempDir(), "--dir", dir+":/data", mod("fs.wasm"))
	if r.code != 0 {
		t.Fatalf("fs.wasm with a writable preopen: exit %d stderr %q", r.code, r.stderr)
	}
	r = run(t, bin, "run", "--state-dir", t.TempDir(), "--dir", dir+":/data:ro", mod("fs.wasm"))
	if r.code != 11 {
		t.Fatalf("fs.wasm with a read-only preopen: exit %d stderr %q; want 11 (write refused)", r.code, r.stderr)
	}
}

func TestCheck(t *testing.T) {
	privtest.RequireRoot(t)
	bin := agentbox(t)
	r := run(t, bin, "check", "--json")
	var rep struct {
		Ready bool `json:"ready"`
		Items []struct {
			Name string `json:"name"`
			OK   bool   `json:"ok"`
		} `json:"items"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("check --json: %v\n%s", err, r.stdout)
	}
	if !rep.Ready || r.code != 0 {
		t.Fatalf("check says not ready (exit %d) on the machine the suite runs on: %s", r.code, r.stdout)
	}
	names := map[string]bool{}
	for _, it := range rep.Items {
		names[it.Name] = true
	}
	for _, want := range []string{"kernel", "namespaces", "seccomp", "cgroups", "landlock"} {
		if !names[want] {
			t.Errorf("check does not report %q", want)
		}
	}
}

func TestExitCodesAreDistinct(t *testing.T) {
	seen := map[int]outcome.Outcome{}
	for _, o := range outcome.All {
		if o == outcome.OK || o == outcome.Exit {
			continue
		}
		c := exitCodeFor(o, 0)
		if prev, dup := seen[c]; dup || c == exitUsage || c == 0 {
			t.Errorf("outcome %s has exit code %d, already used by %q or reserved", o, c, prev)
		}
		seen[c] = o
	}
	if exitCodeFor(outcome.Exit, 256) != 255 || exitCodeFor(outcome.Exit, 7) != 7 {
		t.Error("guest exit codes must pass through, clamped to 255")
	}
}
