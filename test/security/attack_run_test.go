//go:build linux

package security

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentbox/agentbox/internal/privtest"
	"github.com/agentbox/agentbox/internal/testhook"
	"github.com/agentbox/agentbox/outcome"
	"github.com/agentbox/agentbox/sandbox"
)

// job is one Run: the public spec, and the test hooks that travel in its context (a native
// payload in place of the module, walls taken down, the child's pid on start).
type job struct {
	sandbox.Spec
	hooks testhook.Hooks
}

// payloadJob runs the native payload name (argv[0] is its name) under l.
func payloadJob(name string, l sandbox.Limits) job {
	return job{Spec: sandbox.Spec{Args: []string{name}, Limits: l}, hooks: testhook.Hooks{Payload: name}}
}

// attack is one row of the attack table: the documented columns (exported, they are what
// docs/SECURITY.md shows) and how to run it (unexported).
type attack struct {
	Name      string
	Invariant int    // 1..9, DESIGN.md's security invariants
	From      string // "payload" (a guest that escaped wazero) or "module" (a malicious wasm module)
	What      string
	Expect    string // compared exactly with what the run shows (see observe)
	Layer     string // the wall that stops it

	payload   string                  // attackPayloads key, for From "payload"
	module    func(testing.TB) []byte // for From "module"
	args      []string                // argv after the program name
	limits    sandbox.Limits
	compile   sandbox.CompileLimits                           // the compile budget, where the row is about it (its own sandbox)
	prefix    bool                                            // Expect is a prefix of the result (the rest is a count that varies)
	wasiErrno bool                                            // the module exits with a WASI errno: show its name
	setup     func(t *testing.T, sb *sandbox.Sandbox, j *job) // dirs, listeners, neighbour tasks, hooks
	cancel    bool                                            // cancel the run's context once its guest runs
	observe   func(t *testing.T, res sandbox.Result) string   // replaces the default reading
	check     func(t *testing.T, j job, res sandbox.Result)   // further exact assertions
}

// newSandbox is a sandbox with the defaults the CLI uses, without a compile cache.
func newSandbox(t *testing.T) *sandbox.Sandbox {
	t.Helper()
	return newSandboxWith(t, sandbox.Config{})
}

// newSandboxWith is a sandbox with cfg, and the warm pool the suite runs with
// (privtest.WarmPool).
func newSandboxWith(t *testing.T, cfg sandbox.Config) *sandbox.Sandbox {
	t.Helper()
	privtest.RequireRoot(t)
	cfg.WarmPool = privtest.WarmPool(t)
	sb, err := sandbox.New(cfg)
	if err != nil {
		t.Fatalf("sandbox.New: %v", err)
	}
	t.Cleanup(func() { sb.Close() })
	return sb
}

// withHooks is testhook.With in the suite's mode: with privtest.Hot, every task runs in a
// hot child made for it (one with --dirs runs as without).
func withHooks(t testing.TB, ctx context.Context, h testhook.Hooks) context.Context {
	h.Hot = privtest.Hot(t)
	return testhook.With(ctx, h)
}

// runJob runs one task to its verdict. Its own limits bound it (every row sets a tighter
// timeout where it needs one, and the compile has its budget); a hang of ours is the test
// binary's -timeout to report, with every goroutine, never a wall-clock guess of ours.
func runJob(t *testing.T, sb *sandbox.Sandbox, j job) sandbox.Result {
	t.Helper()
	res, err := sb.Run(withHooks(t, context.Background(), j.hooks), j.Spec)
	if err != nil {
		t.Fatalf("Run refused the spec: %v", err)
	}
	return res
}

// runCancelled runs j and cancels its context once its guest runs (the child is in stage
// two): the caller cancels a task that is under way, not one still being set up.
func runCancelled(t *testing.T, sb *sandbox.Sandbox, j job) sandbox.Result {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	started, running := make(chan int, 1), make(chan string, 1)
	go func() {
		running <- stageTwoState(<-started, privtest.Hot(t) && len(j.Dirs) == 0)
		cancel()
	}()
	onStart := j.hooks.OnStart
	j.hooks.OnStart = func(pid int) {
		if onStart != nil {
			onStart(pid)
		}
		started <- pid
	}
	res, err := sb.Run(withHooks(t, ctx, j.hooks), j.Spec)
	close(started) // OnStart is called within Run only: a task that never started reads pid 0
	if err != nil {
		t.Fatalf("Run refused the spec: %v", err)
	}
	if state := <-running; state != "" {
		t.Fatalf("cancel: the guest never ran (%s); verdict %s %q", state, res.Outcome, res.Message)
	}
	return res
}

// jobFor builds the row's job: the payload or module, argv, limits, then its setup.
func (a attack) jobFor(t *testing.T, sb *sandbox.Sandbox) job {
	j := job{Spec: sandbox.Spec{Limits: a.limits}}
	if a.From == "payload" {
		j.hooks.Payload = a.payload
		j.Args = append([]string{a.payload}, a.args...)
	} else {
		j.Module = a.module(t)
		j.Args = append([]string{"main.wasm"}, a.args...)
	}
	if a.setup != nil {
		a.setup(t, sb, &j)
	}
	return j
}

// runAttack runs one row and asserts its Expect exactly, then its extra checks.
func runAttack(t *testing.T, sb *sandbox.Sandbox, a attack) sandbox.Result {
	t.Helper()
	if a.compile != (sandbox.CompileLimits{}) {
		sb = newSandboxWith(t, sandbox.Config{Compile: a.compile})
	}
	j := a.jobFor(t, sb)
	var res sandbox.Result
	if a.cancel {
		res = runCancelled(t, sb, j)
	} else {
		res = runJob(t, sb, j)
	}
	got := observe(t, a, res)
	if got != a.Expect && !(a.prefix && strings.HasPrefix(got, a.Expect)) {
		t.Fatalf("%s: got %q, want %q\noutcome %s (code %d): %s\nstdout: %.300q\nstderr: %.600s",
			a.Name, got, a.Expect, res.Outcome, res.ExitCode, res.Message, res.Stdout, res.Stderr)
	}
	if a.From == "module" && res.Outcome == outcome.SandboxError {
		t.Fatalf("%s: a module caused sandbox_error (%s): only our own faults may", a.Name, res.Message)
	}
	if a.check != nil {
		a.check(t, j, res)
	}
	return res
}

// observe turns a result into the row's vocabulary: a payload's own report, "killed:
// SIGSYS", "WASI <errno>" for modules that exit with one, or "outcome <name>[ <code>]".
func observe(t *testing.T, a attack, res sandbox.Result) string {
	if a.observe != nil {
		return a.observe(t, res)
	}
	if a.From == "payload" && res.Outcome == outcome.OK {
		if f, ok := lastFinding(res.Stdout); ok && f.Attack == a.payload {
			return f.Result
		}
	}
	switch {
	case res.Outcome == outcome.SandboxError && strings.Contains(res.Message, "SIGSYS"):
		return "killed: SIGSYS"
	case res.Outcome == outcome.Exit && a.wasiErrno:
		return "WASI " + wasiErrnoName(res.ExitCode)
	case res.Outcome == outcome.Exit:
		return fmt.Sprintf("outcome exit %d", res.ExitCode)
	}
	return "outcome " + string(res.Outcome)
}

// lastFinding parses the payload's JSON line (the last line of stdout).
func lastFinding(stdout []byte) (finding, bool) {
	var f finding
	lines := bytes.Split(bytes.TrimSpace(stdout), []byte("\n"))
	err := json.Unmarshal(lines[len(lines)-1], &f)
	return f, err == nil && f.Attack != ""
}

// wasiErrnoName names the WASI preview 1 errnos the suite meets.
func wasiErrnoName(code uint32) string {
	names := map[uint32]string{0: "ESUCCESS", 2: "EACCES", 8: "EBADF", 20: "EEXIST", 21: "EFAULT", 28: "EINVAL",
		44: "ENOENT", 52: "ENOSYS", 54: "ENOTDIR", 58: "ENOTSUP", 61: "ELOOP", 63: "EPERM", 76: "ENOTCAPABLE"}
	if n, ok := names[code]; ok {
		return n
	}
	return "errno " + strconv.Itoa(int(code))
}

// rowsOf returns the rows of one invariant.
func rowsOf(inv int) []attack {
	var rows []attack
	for _, a := range attacks {
		if a.Invariant == inv {
			rows = append(rows, a)
		}
	}
	return rows
}

// runRows runs rows as subtests named by Name, on one sandbox.
func runRows(t *testing.T, rows []attack) {
	sb := newSandbox(t)
	for _, a := range rows {
		t.Run(a.Name, func(t *testing.T) { runAttack(t, sb, a) })
	}
}

// --- setups and checks shared by rows ---

// hostDir makes a directory the task's unprivileged uid can write (the sandbox maps root
// inside to a host uid that owns nothing).
func hostDir(t *testing.T) string {
	t.Helper()
	d := filepath.Join(t.TempDir(), "inside")
	if err := os.Mkdir(d, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(d, 0o777); err != nil { // past the umask
		t.Fatal(err)
	}
	return d
}

// withWritableDir offers one writable preopen.
func withWritableDir(t *testing.T, _ *sandbox.Sandbox, j *job) {
	j.Dirs = []sandbox.Dir{{HostPath: hostDir(t), GuestPath: "/data"}}
}

// escapeFixture is a preopen "inside" with a secret next to it, "outside", and symlinks
// the host made inside that lead to it: absolute, relative, and to the host's /etc.
func escapeFixture(t *testing.T, _ *sandbox.Sandbox, j *job) {
	inside := hostDir(t)
	outside := filepath.Join(filepath.Dir(inside), "outside")
	must(t, os.Mkdir(outside, 0o755))
	secret := filepath.Join(outside, "secret")
	must(t, os.WriteFile(secret, []byte("host secret\n"), 0o644))
	must(t, os.Symlink(secret, filepath.Join(inside, "abslink")))
	must(t, os.Symlink("../outside/secret", filepath.Join(inside, "rellink")))
	must(t, os.Symlink("/etc/hostname", filepath.Join(inside, "etclink")))
	must(t, os.WriteFile(filepath.Join(inside, "own"), []byte("own file\n"), 0o644))
	j.Dirs = []sandbox.Dir{{HostPath: inside, GuestPath: "/data"}}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// noSecretLeak: whatever the guest printed, the outside file's contents are not in it.
func noSecretLeak(t *testing.T, _ job, res sandbox.Result) {
	if bytes.Contains(res.Stdout, []byte("host secret")) {
		t.Fatalf("the guest read the file outside its preopen: %q", res.Stdout)
	}
}

// hostListener opens a TCP listener on the host's 127.0.0.1, passes its port as the last
// argument, and fails the test if anything ever connected to it.
func hostListener(t *testing.T, _ *sandbox.Sandbox, j *job) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	var mu sync.Mutex
	accepted := 0
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			accepted++
			mu.Unlock()
			c.Close()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		if accepted != 0 && !strings.Contains(t.Name(), "connects") {
			t.Errorf("the host listener accepted %d connection(s) from the sandbox", accepted)
		}
	})
	j.Args = append(j.Args, strconv.Itoa(ln.Addr().(*net.TCPAddr).Port))
}

// neighbour starts another task running payload (with walls taken down as unsafe says)
// and returns once it has started and printed its first line, stopping it when the test
// ends. It returns that task's host pid. Its timeout is far beyond any attack: it must
// live until the cleanup cancels it, however slow the machine.
func neighbour(t *testing.T, sb *sandbox.Sandbox, payload string, args []string, unsafe testhook.Unsafe) int {
	t.Helper()
	pr, pw, err := os.Pipe()
	must(t, err)
	pidCh := make(chan int, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan sandbox.Result, 1)
	hooks := testhook.Hooks{Payload: payload, Unsafe: unsafe, OnStart: func(pid int) { pidCh <- pid }}
	go func() {
		res, _ := sb.Run(withHooks(t, ctx, hooks), sandbox.Spec{Args: append([]string{payload}, args...),
			Stdout: pw, Limits: sandbox.Limits{Timeout: time.Hour}})
		pw.Close()
		done <- res
	}()
	t.Cleanup(func() {
		cancel()
		if res := <-done; res.Outcome != outcome.Cancelled {
			t.Errorf("neighbour %s ended %s (%s), want cancelled: it should have lived through the attack", payload, res.Outcome, res.Message)
		}
		pr.Close()
	})
	var pid int
	select {
	case pid = <-pidCh:
	case res := <-done:
		done <- res // for the cleanup
		t.Fatalf("neighbour %s ended before it started: %s %q", payload, res.Outcome, res.Message)
	}
	// The first line, or EOF if the task ends first (its stdout closes with it).
	s, _ := bufio.NewReader(pr).ReadString('\n')
	if s == "" {
		t.Fatalf("neighbour %s printed nothing", payload)
	}
	go io.Copy(io.Discard, pr)
	return pid
}

// quantised reads clock.wasm's 32 bytes (monotonic resolution and time, realtime
// resolution and time) and says whether every value is a multiple of the resolution.
func quantised(res time.Duration) func(t *testing.T, r sandbox.Result) string {
	return func(t *testing.T, r sandbox.Result) string {
		if r.Outcome != outcome.OK || len(r.Stdout) != 32 {
			return fmt.Sprintf("outcome %s, %d bytes", r.Outcome, len(r.Stdout))
		}
		var v [4]uint64
		for i := range v {
			for j := 7; j >= 0; j-- {
				v[i] = v[i]<<8 | uint64(r.Stdout[i*8+j])
			}
		}
		step := uint64(res.Nanoseconds())
		if v[0] != step || v[2] != step || v[1]%step != 0 || v[3]%step != 0 || v[3] == 0 {
			return fmt.Sprintf("resolution %d/%d, times %d/%d", v[0], v[2], v[1], v[3])
		}
		return "quantised to " + res.String()
	}
}
