package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/agentbox/agentbox/internal/privtest"
	"github.com/agentbox/agentbox/outcome"
	"github.com/agentbox/agentbox/verdict"
)

// The CLI contract (README): users script against these flags, JSON names and exit codes,
// so these tests run the real binary, built static as the Makefile builds it.

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

var (
	buildOnce sync.Once
	binDir    string
	binPath   string
	buildErr  error
)

// agentbox builds the CLI once per test binary run, into a directory any user may read
// (TestCheckUnprivileged runs it as nobody).
func agentbox(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		if binDir, buildErr = os.MkdirTemp("", "agentbox-clitest-"); buildErr != nil {
			return
		}
		os.Chmod(binDir, 0o755)
		binPath = filepath.Join(binDir, "agentbox")
		cmd := exec.Command("go", "build", "-o", binPath, ".")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = errors.New("go build: " + err.Error() + "\n" + string(out))
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

type cliResult struct {
	code           int
	stdout, stderr string
}

func run(t *testing.T, cmd *exec.Cmd) cliResult {
	t.Helper()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	code := 0
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run %s with %d args: %v", cmd.Path, len(cmd.Args)-1, err)
	}
	return cliResult{code: code, stdout: out.String(), stderr: errb.String()}
}

func cli(t *testing.T, args ...string) cliResult {
	t.Helper()
	return run(t, exec.Command(agentbox(t), args...))
}

func mod(name string) string { return filepath.Join("..", "..", "testdata", "modules", name) }

// oneJSON decodes s, which must be exactly one JSON object and nothing else, into v.
func oneJSON(t *testing.T, s string, v any) {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(s))
	if err := dec.Decode(v); err != nil {
		t.Fatalf("not a JSON object: %v\n%s", err, s)
	}
	if err := dec.Decode(new(json.RawMessage)); err != io.EOF {
		t.Fatalf("more than one JSON value (%v):\n%s", err, s)
	}
}

func TestExitCodes(t *testing.T) {
	tests := []struct {
		name      string
		o         outcome.Outcome
		guestCode uint32
		want      int
	}{
		{"ok", outcome.OK, 0, 0},
		{"guest exit passes through", outcome.Exit, 7, 7},
		{"guest exit above 255", outcome.Exit, 256, 255},
		{"guest exit 121 passes through as is", outcome.Exit, 121, 121},
		{"pids_limit", outcome.PidsLimit, 0, 118},
		{"invalid_module", outcome.InvalidModule, 0, 119},
		{"trap", outcome.Trap, 0, 120},
		{"memory_limit", outcome.MemoryLimit, 0, 121},
		{"cpu_limit", outcome.CPULimit, 0, 122},
		{"output_limit", outcome.OutputLimit, 0, 123},
		{"timeout", outcome.Timeout, 0, 124},
		{"sandbox_error", outcome.SandboxError, 0, 125},
		{"cancelled", outcome.Cancelled, 0, 130},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := exitCodeFor(tt.o, tt.guestCode); got != tt.want {
				t.Fatalf("exitCodeFor(%s, %d) = %d, want %d", tt.o, tt.guestCode, got, tt.want)
			}
		})
	}
}

func TestExitCodesAreDistinct(t *testing.T) {
	seen := map[int]string{exitOK: "ok", exitCheckFailed: "check failed", exitUsage: "usage"}
	for _, o := range outcome.All {
		if o == outcome.OK || o == outcome.Exit {
			continue
		}
		c := exitCodeFor(o, 0)
		if prev, dup := seen[c]; dup {
			t.Errorf("outcome %s has exit code %d, already used by %s", o, c, prev)
		}
		seen[c] = string(o)
	}
}

// TestRefusedBeforeRun: everything the caller can get wrong is exit 2 with a message naming
// the flag and value, and under --json exactly one error object, before any sandbox is
// prepared: the --cache-dir given is never created, so no task was spawned.
func TestRefusedBeforeRun(t *testing.T) {
	dir := t.TempDir()
	hello := mod("hello.wasm")
	// Stand-ins for /dev/stdout (a symlink) and a device (a FIFO), safe to clobber should a
	// regression rename over them.
	link, fifo := filepath.Join(dir, "link"), filepath.Join(dir, "fifo")
	os.WriteFile(filepath.Join(dir, "real"), nil, 0o644)
	os.Symlink(filepath.Join(dir, "real"), link)
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	big := strings.Repeat("a", 40<<10) // four of them pass the 128Ki bound; one stays under exec's own per-string cap
	many := make([]string, 4097)
	for i := range many {
		many[i] = "x"
	}
	tests := []struct {
		name          string
		flags         []string // before --json
		rest          []string // after --json: MODULE and the guest's arguments
		code          verdict.Code
		field, value  string
		stderr        []string
		noVerdictFile bool
	}{
		{name: "unknown size unit", flags: []string{"--memory", "64Q"}, rest: []string{hello},
			code: verdict.InvalidArgument, field: "--memory", value: "64Q", stderr: []string{"--memory", "64Q"}},
		{name: "unknown flag, --json after it", flags: []string{"--memroy", "1Gi"}, rest: []string{hello},
			code: verdict.InvalidArgument, field: "--memroy", stderr: []string{"unknown flag --memroy"}},
		{name: "bad duration", flags: []string{"--timeout", "soon"}, rest: []string{hello},
			code: verdict.InvalidArgument, field: "--timeout", value: "soon", stderr: []string{"--timeout", "soon", "30s"}},
		{name: "memory 0 is not the default", flags: []string{"--memory", "0"}, rest: []string{hello},
			code: verdict.InvalidArgument, field: "--memory", value: "0", stderr: []string{"--memory 0", "more than 0"}},
		{name: "output limit 0", flags: []string{"--output-limit", "0"}, rest: []string{hello},
			code: verdict.InvalidArgument, field: "--output-limit", value: "0"},
		{name: "cpus beyond the host", flags: []string{"--cpus", "1000"}, rest: []string{hello},
			code: verdict.InvalidArgument, field: "--cpus", value: "1000", stderr: []string{"1000", "CPUs of this host"}},
		{name: "zero cpus", flags: []string{"--cpus", "0"}, rest: []string{hello},
			code: verdict.InvalidArgument, field: "--cpus", value: "0"},
		{name: "compile timeout 0", flags: []string{"--compile-timeout", "0s"}, rest: []string{hello},
			code: verdict.InvalidArgument, field: "--compile-timeout", value: "0s"},
		{name: "cache bound 0", flags: []string{"--cache-max-size", "0"}, rest: []string{hello},
			code: verdict.InvalidArgument, field: "--cache-max-size", value: "0"},
		{name: "env without =", flags: []string{"--env", "NOPE"}, rest: []string{hello},
			code: verdict.InvalidArgument, field: "--env", value: "NOPE", stderr: []string{"KEY=VALUE"}},
		{name: "missing module", rest: nil,
			code: verdict.InvalidArgument, field: "MODULE", stderr: []string{"missing MODULE"}},
		{name: "unreadable module", rest: []string{"/nonexistent.wasm"},
			code: verdict.InvalidArgument, field: "MODULE", value: "/nonexistent.wasm", stderr: []string{"cannot read module", "/nonexistent.wasm"}},
		{name: "/dev/zero is refused, not read", rest: []string{"/dev/zero"},
			code: verdict.InvalidArgument, field: "MODULE", value: "/dev/zero", stderr: []string{"character device", "not a regular file"}},
		{name: "a directory as module", rest: []string{dir},
			code: verdict.InvalidArgument, field: "MODULE", value: dir, stderr: []string{"directory"}},
		{name: "module above --max-module-size", flags: []string{"--max-module-size", "16"}, rest: []string{hello},
			code: verdict.TooLarge, field: "MODULE", value: hello, stderr: []string{"--max-module-size 16B"}},
		{name: "4097 guest args", rest: append([]string{hello}, many...),
			code: verdict.TooLarge, field: "ARGS", value: "4097", stderr: []string{"4097 arguments", "4096"}},
		{name: "guest args too many bytes", rest: []string{hello, big, big, big, big},
			code: verdict.TooLarge, field: "ARGS"},
		{name: "dir that does not exist", flags: []string{"--dir", "/nonexistent"}, rest: []string{hello},
			code: verdict.InvalidArgument, field: "--dir", value: "/nonexistent"},
		{name: "dir with too many parts", flags: []string{"--dir", "/tmp:/a:/b:ro"}, rest: []string{hello},
			code: verdict.InvalidArgument, field: "--dir", value: "/tmp:/a:/b:ro", stderr: []string{"HOST[:GUEST][:ro|:rw]"}},
		{name: "relative guest path", flags: []string{"--dir", dir + ":data"}, rest: []string{hello},
			code: verdict.InvalidArgument, field: "--dir", value: dir + ":data", stderr: []string{"absolute and clean", "/data"}},
		{name: "unclean guest path", flags: []string{"--dir", dir + ":/data/:rw"}, rest: []string{hello},
			code: verdict.InvalidArgument, field: "--dir", value: dir + ":/data/:rw"},
		{name: "duplicate guest path", flags: []string{"--dir", dir + ":/data", "--dir", "/tmp:/data:ro"}, rest: []string{hello},
			code: verdict.InvalidArgument, field: "--dir", value: "/tmp:/data:ro", stderr: []string{"/data", "already taken"}},
		{name: "duplicate default guest path", flags: []string{"--dir", dir, "--dir", dir + ":ro"}, rest: []string{hello},
			code: verdict.InvalidArgument, field: "--dir", value: dir + ":ro"},
		{name: "verdict file in a missing directory", flags: []string{"--verdict-file", "/nonexistent/v.json"}, rest: []string{hello},
			code: verdict.InvalidArgument, field: "--verdict-file", value: "/nonexistent/v.json", noVerdictFile: true},
		{name: "verdict file is a symlink", flags: []string{"--verdict-file", link}, rest: []string{hello},
			code: verdict.InvalidArgument, field: "--verdict-file", value: link, stderr: []string{"symlink"}, noVerdictFile: true},
		{name: "verdict file is a FIFO", flags: []string{"--verdict-file", fifo}, rest: []string{hello},
			code: verdict.InvalidArgument, field: "--verdict-file", value: fifo, stderr: []string{"named pipe"}, noVerdictFile: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cache := filepath.Join(t.TempDir(), "never")
			vfile := filepath.Join(t.TempDir(), "verdict.json")
			var args []string
			if !tt.noVerdictFile {
				args = []string{"--verdict-file", vfile}
			}
			args = append(append(append(append([]string{"run", "--cache-dir", cache}, args...), tt.flags...), "--json"), tt.rest...)
			r := cli(t, args...)
			if r.code != exitUsage {
				t.Fatalf("exit code %d, want %d (usage); stderr %q", r.code, exitUsage, r.stderr)
			}
			for _, w := range tt.stderr {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr %q does not name %q", r.stderr, w)
				}
			}
			var body verdict.ErrorBody
			oneJSON(t, r.stdout, &body)
			e := body.Error
			if e == nil || e.Code != tt.code || e.Field != tt.field || (tt.value != "" && e.Value != tt.value) || e.Message == "" {
				t.Errorf("error object %+v; want code %s field %q value %q", e, tt.code, tt.field, tt.value)
			}
			if !tt.noVerdictFile {
				checkErrorFile(t, vfile, r.stdout)
			}
			if _, err := os.Stat(cache); err == nil {
				t.Errorf("--cache-dir %s was created: the sandbox was prepared for a refused request", cache)
			}
		})
	}
}

// checkErrorFile: the verdict file holds the same error object as stdout, and no
// temporary file is left beside it.
func checkErrorFile(t *testing.T, path, stdout string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("verdict file: %v", err)
	}
	if string(b) != stdout {
		t.Errorf("verdict file %s differs from the --json error:\n%s", b, stdout)
	}
	if ents, _ := os.ReadDir(filepath.Dir(path)); len(ents) != 1 {
		t.Errorf("%d files beside the verdict file, want none", len(ents)-1)
	}
}

func TestRefusedBySandbox(t *testing.T) {
	privtest.RequireRoot(t)
	tests := []struct {
		name  string
		flags []string
		want  string
	}{
		{name: "memory below the runtime's need", flags: []string{"--memory", "1Mi"}, want: "memory 1Mi"},
		{name: "compile memory below the runtime's need", flags: []string{"--compile-memory", "1Mi"}, want: "compile memory 1Mi"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := cli(t, append(append([]string{"run", "--json", "--cache-dir", ""}, tt.flags...), mod("hello.wasm"))...)
			var body verdict.ErrorBody
			oneJSON(t, r.stdout, &body)
			if r.code != exitUsage || body.Error == nil || !strings.Contains(body.Error.Message, tt.want) {
				t.Fatalf("exit %d, error %+v; want exit 2 naming %q", r.code, body.Error, tt.want)
			}
		})
	}
}

func TestRunVerdicts(t *testing.T) {
	privtest.RequireRoot(t)
	tests := []struct {
		name     string
		args     []string
		want     outcome.Outcome
		code     int
		exitCode bool // whether exit_code must be present
		check    func(t *testing.T, v verdict.Verdict)
	}{
		{name: "ok", args: []string{mod("hello.wasm")}, want: outcome.OK, code: 0, exitCode: true, check: func(t *testing.T, v verdict.Verdict) {
			if *v.Stdout != "hello from wasm\n" || v.Limits.Memory != "256Mi" || v.Warnings == nil {
				t.Errorf("stdout %q limits %+v warnings %v", *v.Stdout, v.Limits, v.Warnings)
			}
		}},
		{name: "guest exit code passes through", args: []string{mod("exit3.wasm")}, want: outcome.Exit, code: 3, exitCode: true},
		{name: "trap", args: []string{mod("trap.wasm")}, want: outcome.Trap, code: exitTrap},
		{name: "invalid module", args: []string{mod("invalid.wasm")}, want: outcome.InvalidModule, code: exitInvalidModule},
		{name: "memory past 64Mi", args: []string{"--memory", "64Mi", mod("growmem.wasm")}, want: outcome.MemoryLimit, code: exitMemoryLimit},
		{name: "endless loop, 1s timeout", args: []string{"--timeout", "1s", mod("loop.wasm")}, want: outcome.Timeout, code: exitTimeout},
		{name: "cpu time", args: []string{"--cpu-time", "500ms", mod("loop.wasm")}, want: outcome.CPULimit, code: exitCPULimit},
		{name: "output cap", args: []string{"--output-limit", "1Ki", mod("spam.wasm")}, want: outcome.OutputLimit, code: exitOutputLimit,
			check: func(t *testing.T, v verdict.Verdict) {
				if len(*v.Stdout) != 1024 || !v.StdoutTruncated {
					t.Errorf("stdout %d bytes truncated=%t; want exactly 1024 and truncated", len(*v.Stdout), v.StdoutTruncated)
				}
			}},
		{name: "env reaches the guest, host env does not", args: []string{"--env", "A=1", mod("env.wasm")}, want: outcome.OK, code: 0, exitCode: true,
			check: func(t *testing.T, v verdict.Verdict) {
				if *v.Stdout != "A=1\n" {
					t.Errorf("guest env %q, want exactly A=1", *v.Stdout)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := cli(t, append([]string{"run", "--json", "--cache-dir", ""}, tt.args...)...)
			var v verdict.Verdict
			oneJSON(t, r.stdout, &v)
			if v.Outcome != tt.want || r.code != tt.code || v.Message == "" {
				t.Fatalf("outcome %s (exit %d) %q; want %s (exit %d)\nstderr: %s", v.Outcome, r.code, v.Message, tt.want, tt.code, r.stderr)
			}
			var raw map[string]json.RawMessage
			json.Unmarshal([]byte(r.stdout), &raw)
			for key, want := range map[string]bool{"exit_code": tt.exitCode, "stdout": true, "stderr": true, "warnings": true} {
				if _, ok := raw[key]; ok != want {
					t.Errorf("%q present %t, want %t", key, ok, want)
				}
			}
			var usage map[string]json.RawMessage
			if json.Unmarshal(raw["usage"], &usage); usage["compile_ms"] == nil {
				t.Errorf("usage %s has no compile_ms", raw["usage"])
			}
			if tt.check != nil {
				tt.check(t, v)
			}
		})
	}
}

// TestArgsAfterModule: what follows MODULE is the guest's, our flags' names included.
func TestArgsAfterModule(t *testing.T) {
	privtest.RequireRoot(t)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{name: "flags after MODULE", args: []string{"--json", "--verbose"}, want: "args.wasm\n--json\n--verbose\n"},
		{name: "-- after MODULE is dropped", args: []string{"--", "a", "--json"}, want: "args.wasm\na\n--json\n"},
		{name: "a literal -- first", args: []string{"--", "--", "x"}, want: "args.wasm\n--\nx\n"},
		{name: "no args", want: "args.wasm\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := cli(t, append([]string{"run", "--json", "--cache-dir", "", mod("args.wasm")}, tt.args...)...)
			var v verdict.Verdict
			oneJSON(t, r.stdout, &v)
			if r.code != 0 || v.Stdout == nil || *v.Stdout != tt.want {
				t.Fatalf("exit %d, guest printed %q; want %q", r.code, deref(v.Stdout), tt.want)
			}
		})
	}
	// Before MODULE, "--" ends our flags as usual.
	r := cli(t, "run", "--cache-dir", "", "--", mod("args.wasm"), "b")
	if r.code != 0 || r.stdout != "args.wasm\nb\n" {
		t.Fatalf("run -- MODULE b: exit %d stdout %q", r.code, r.stdout)
	}
}

func deref(s *string) string {
	if s == nil {
		return "<absent>"
	}
	return *s
}

// TestVerdictFile: the output streams, and the verdict file holds the verdict without it.
func TestVerdictFile(t *testing.T) {
	privtest.RequireRoot(t)
	tests := []struct {
		name       string
		json       bool
		wantStdout string
	}{
		{name: "output streams", wantStdout: "hello from wasm\n"},
		{name: "with --json", json: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "verdict.json")
			args := []string{"run", "--cache-dir", "", "--verdict-file", path}
			if tt.json {
				args = append(args, "--json")
			}
			r := cli(t, append(args, mod("hello.wasm"))...)
			if r.code != 0 || (!tt.json && r.stdout != tt.wantStdout) {
				t.Fatalf("exit %d stdout %q; want 0 and %q", r.code, r.stdout, tt.wantStdout)
			}
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			var raw map[string]json.RawMessage
			oneJSON(t, string(b), &raw)
			if string(raw["outcome"]) != `"ok"` || string(raw["exit_code"]) != "0" || raw["stdout"] != nil || raw["stderr"] != nil || raw["usage"] == nil {
				t.Errorf("verdict file %s; want outcome ok, exit_code 0, usage, and no stdout/stderr", b)
			}
			if tt.json {
				var v verdict.Verdict
				oneJSON(t, r.stdout, &v)
				if deref(v.Stdout) != "hello from wasm\n" {
					t.Errorf("--json stdout field %q", deref(v.Stdout))
				}
			}
		})
	}
}

// TestWarnings: a cache others could write is refused; the task runs without it and says so.
func TestWarnings(t *testing.T) {
	privtest.RequireRoot(t)
	cache := t.TempDir()
	os.Chmod(cache, 0o777)
	r := cli(t, "run", "--json", "--cache-dir", cache, mod("hello.wasm"))
	var v verdict.Verdict
	oneJSON(t, r.stdout, &v)
	if r.code != 0 || len(v.Warnings) != 1 || !strings.Contains(v.Warnings[0], cache) {
		t.Fatalf("exit %d warnings %q; want one naming %s", r.code, v.Warnings, cache)
	}
	if !strings.Contains(r.stderr, "agentbox: warning: "+v.Warnings[0]) {
		t.Errorf("stderr %q does not carry the warning", r.stderr)
	}
}

func TestPlainOutputAndVerdictLine(t *testing.T) {
	privtest.RequireRoot(t)
	r := cli(t, "run", "--cache-dir", "", mod("stderr.wasm"))
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
	in := filepath.Join(t.TempDir(), "in.txt")
	os.WriteFile(in, []byte("from a file\n"), 0o644)
	r := cli(t, "run", "--cache-dir", "", "--stdin", in, mod("echo.wasm"))
	if r.code != 0 || r.stdout != "from a file\n" {
		t.Fatalf("echo via --stdin: exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "in.txt"), []byte("data"), 0o644)
	// The task's host uid must be able to write there: give the directory to everyone.
	os.Chmod(dir, 0o777)
	tests := []struct {
		name string
		dir  string
		code int
	}{
		{name: "writable by default", dir: dir + ":/data", code: 0},
		{name: "explicit rw", dir: dir + ":/data:rw", code: 0},
		{name: "read-only: write refused", dir: dir + ":/data:ro", code: 11},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := cli(t, "run", "--cache-dir", "", "--dir", tt.dir, mod("fs.wasm"))
			if r.code != tt.code {
				t.Fatalf("fs.wasm with --dir %s: exit %d stderr %q; want %d", tt.dir, r.code, r.stderr, tt.code)
			}
		})
	}
}

// checkReport is the JSON of `agentbox check --json`.
type checkReport struct {
	Ready bool `json:"ready"`
	Items []struct {
		Name    string `json:"name"`
		OK      bool   `json:"ok"`
		Skipped bool   `json:"skipped"`
		Detail  string `json:"detail"`
		Fix     string `json:"fix"`
	} `json:"items"`
}

func (r checkReport) item(name string) (ok, skipped bool, detail string) {
	for _, it := range r.Items {
		if it.Name == name {
			return it.OK, it.Skipped, it.Detail
		}
	}
	return false, false, "<absent>"
}

func TestCheck(t *testing.T) {
	privtest.RequireRoot(t)
	r := cli(t, "check", "--json", "--cache-dir", filepath.Join(t.TempDir(), "cache"))
	var rep checkReport
	oneJSON(t, r.stdout, &rep)
	if !rep.Ready || r.code != 0 {
		t.Fatalf("check says not ready (exit %d) on the machine the suite runs on: %s", r.code, r.stdout)
	}
	for _, want := range []string{"kernel", "root", "CAP_SYS_ADMIN", "namespaces", "seccomp", "cgroups", "uid locks", "compile cache", "landlock", "sandboxed run"} {
		if ok, _, detail := rep.item(want); !ok && want != "landlock" {
			t.Errorf("check item %q not ok: %s", want, detail)
		}
	}
	if _, _, detail := rep.item("sandboxed run"); !strings.Contains(detail, "verdict ok") {
		t.Errorf("sandboxed run detail %q does not report the verdict", detail)
	}
}

func TestCacheCommands(t *testing.T) {
	privtest.RequireRoot(t)
	cache := filepath.Join(t.TempDir(), "cache")
	ls := func() cacheListing {
		t.Helper()
		r := cli(t, "cache", "ls", "--json", "--cache-dir", cache)
		var l cacheListing
		oneJSON(t, r.stdout, &l)
		if r.code != 0 {
			t.Fatalf("cache ls: exit %d %s", r.code, r.stderr)
		}
		return l
	}
	if l := ls(); len(l.Entries) != 0 || l.Entries == nil {
		t.Fatalf("a cache not yet made lists %v; want []", l.Entries)
	}
	for _, m := range []string{"hello.wasm", "exit3.wasm"} {
		cli(t, "run", "--cache-dir", cache, mod(m))
	}
	if l := ls(); len(l.Entries) != 2 || l.TotalBytes == 0 {
		t.Fatalf("after two modules the cache lists %+v", l)
	}
	tests := []struct {
		name      string
		args      []string
		code      int
		remaining int
	}{
		{name: "--all with --max-size is a usage error", args: []string{"--all", "--max-size", "1Mi"}, code: exitUsage, remaining: 2},
		{name: "--max-size 0 is a usage error", args: []string{"--max-size", "0"}, code: exitUsage, remaining: 2},
		{name: "a bound they fit in removes nothing", args: []string{"--max-size", "1Gi"}, remaining: 2},
		{name: "--all removes everything", args: []string{"--all"}, remaining: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := cli(t, append([]string{"cache", "prune", "--json", "--cache-dir", cache}, tt.args...)...)
			if r.code != tt.code {
				t.Fatalf("prune %v: exit %d, want %d; %s", tt.args, r.code, tt.code, r.stderr)
			}
			if l := ls(); len(l.Entries) != tt.remaining {
				t.Fatalf("after prune %v: %d entries, want %d", tt.args, len(l.Entries), tt.remaining)
			}
		})
	}
}

func TestVersion(t *testing.T) {
	info, _ := debug.ReadBuildInfo()
	wazero := ""
	for _, d := range info.Deps {
		if d.Path == "github.com/tetratelabs/wazero" {
			wazero = d.Version
		}
	}
	for _, args := range [][]string{{"version"}, {"--version"}} {
		r := cli(t, args...)
		for _, want := range []string{"agentbox ", "\ncommit:  ", "\nwazero:  " + wazero + "\n"} {
			if r.code != 0 || !strings.Contains(r.stdout, want) {
				t.Errorf("agentbox %v: exit %d stdout %q; want %q in it", args, r.code, r.stdout, want)
			}
		}
	}
}
