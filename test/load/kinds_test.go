package load

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/agentbox/agentbox/outcome"
	"github.com/agentbox/agentbox/supervisor/client"
	"github.com/agentbox/agentbox/supervisor/task"
	"github.com/agentbox/agentbox/verdict"
)

// taskMemory is every task's memory limit; the daemon's budget is agents × taskMemory.
const (
	taskMemory      = "64Mi"
	taskMemoryBytes = 64 << 20
)

// kind is one sort of agent in the mixed load, with the verdict it must get.
type kind struct {
	name     string
	module   string // file under testdata/modules
	limits   task.Limits
	want     outcome.Outcome
	or       outcome.Outcome // a second outcome accepted, when there is one (see mixed)
	exitCode *uint32         // for exit
	stdout   string          // checked when not empty
}

func code(n uint32) *uint32 { return &n }

// mixed is the mixed load of the issue: well-behaved agents, guests that fail in each way
// a guest can, memory bombs, endless loops (stopped by the wall clock and by CPU time)
// and output floods. Fork bombs need a native payload (a wasm guest cannot fork), which
// only test binaries register with the sandbox: the security suite covers them. Invalid
// modules are refused at upload (invalidModules).
var mixed = []kind{
	{name: "hello", module: "hello.wasm", want: outcome.OK, stdout: "hello from wasm\n"},
	{name: "exit 3", module: "exit3.wasm", want: outcome.Exit, exitCode: code(3)},
	{name: "stderr", module: "stderr.wasm", want: outcome.Exit, exitCode: code(1)},
	{name: "trap", module: "trap.wasm", want: outcome.Trap},
	{name: "out of bounds", module: "oob.wasm", want: outcome.Trap},
	// Under 64 MiB the kernel OOM-kills a stack overflow before wazero's call-stack
	// ceiling traps it (the recursion needs some 130 MiB of host memory): memory_limit
	// is a correct verdict there, trap is the one above about 128 MiB.
	{name: "stack overflow", module: "stackoverflow.wasm", want: outcome.Trap, or: outcome.MemoryLimit},
	{name: "memory bomb", module: "growmem.wasm", want: outcome.MemoryLimit},
	{name: "endless loop, wall clock", module: "loop.wasm", limits: task.Limits{Timeout: "2s"}, want: outcome.Timeout},
	{name: "endless loop, CPU time", module: "loop.wasm", limits: task.Limits{CPUTime: "500ms", Timeout: "5m"}, want: outcome.CPULimit},
	{name: "output flood", module: "spam.wasm", limits: task.Limits{OutputLimit: "4Ki"}, want: outcome.OutputLimit},
}

// invalidModules must be refused at upload with invalid_argument.
var invalidModules = []string{"invalid.wasm", "nostart.wasm", "badimport.wasm", "sharedmem.wasm"}

// holder holds its slot until cancelled: the verdict is cancelled.
var holder = kind{name: "holder", want: outcome.Cancelled, limits: task.Limits{Timeout: "1h"}}

// pushAll uploads every module of kinds and returns module file → digest.
func pushAll(t *testing.T, c *client.Client, ks []kind) map[string]string {
	t.Helper()
	digests := map[string]string{}
	for _, k := range ks {
		path := modules + k.module
		if k.module == "" {
			path = holderModule
		}
		if _, ok := digests[k.module]; !ok {
			digests[k.module] = push(t, c, path)
		}
	}
	return digests
}

func push(t *testing.T, c *client.Client, path string) string {
	t.Helper()
	m, err := pushFile(c, path)
	if err != nil {
		t.Fatalf("push %s: %v", path, err)
	}
	return m.Digest
}

func pushFile(c *client.Client, path string) (task.Module, error) {
	f, err := os.Open(path)
	if err != nil {
		return task.Module{}, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return task.Module{}, err
	}
	return c.PushModule(context.Background(), f, st.Size())
}

// checkInvalidPushes uploads every invalid module and returns what went wrong.
func checkInvalidPushes(c *client.Client) []string {
	var bad []string
	for _, name := range invalidModules {
		_, err := pushFile(c, modules+name)
		var ve *verdict.Error
		if !errors.As(err, &ve) || ve.Code != verdict.InvalidArgument {
			bad = append(bad, fmt.Sprintf("push %s: got %v, want invalid_argument", name, err))
		}
	}
	return bad
}

// request is the submit request of the i-th task of kind k in the run labelled run.
func (k kind) request(digests map[string]string, run string, i int) task.SubmitRequest {
	l := k.limits
	l.Memory = taskMemory
	return task.SubmitRequest{Module: digests[k.module], Limits: l,
		Labels: map[string]string{"run": run, "kind": k.name, "i": strconv.Itoa(i)}}
}

// submitted is a task the test submitted, with the kind it must end as.
type submitted struct {
	id   string
	kind kind
}

// submitAll submits n tasks labelled run, the i-th of kind pick(i), in batches, and
// returns them in order.
func submitAll(t *testing.T, c *client.Client, digests map[string]string, run string, n int, pick func(int) kind) []submitted {
	t.Helper()
	const batch = 200
	out := make([]submitted, 0, n)
	for start := 0; start < n; start += batch {
		var rs []task.SubmitRequest
		for i := start; i < min(n, start+batch); i++ {
			rs = append(rs, pick(i).request(digests, run, i))
		}
		results, err := c.SubmitBatch(context.Background(), rs)
		if err != nil {
			t.Fatalf("submit batch of %d: %v", len(rs), err)
		}
		for j, r := range results {
			if r.Task == nil {
				t.Fatalf("task %d of %s refused: %v", start+j, run, r.Error)
			}
			out = append(out, submitted{id: r.Task.ID, kind: pick(start + j)})
		}
	}
	return out
}

// finals lists every task labelled run once all n are done: it waits on the daemon's own
// count of final tasks, then reads the records.
func finals(t *testing.T, d *daemon, c *client.Client, run string, n int) map[string]task.Task {
	t.Helper()
	waitFor(t, d, fmt.Sprintf("%d tasks of %s final", n, run), 10*time.Minute, func() bool {
		return countTasks(t, c, task.Filter{State: task.Done, Labels: map[string]string{"run": run}}) >= n
	})
	out := map[string]task.Task{}
	f := task.Filter{Labels: map[string]string{"run": run}, Limit: 1000}
	for {
		p, err := c.List(context.Background(), f)
		if err != nil {
			t.Fatalf("list %s: %v", run, err)
		}
		for _, tk := range p.Tasks {
			out[tk.ID] = tk
		}
		if p.NextCursor == "" {
			return out
		}
		f.Cursor = p.NextCursor
	}
}

// countTasks counts the tasks f selects, page by page.
func countTasks(t *testing.T, c *client.Client, f task.Filter) int {
	t.Helper()
	f.Limit = 1000
	n := 0
	for {
		p, err := c.List(context.Background(), f)
		if err != nil {
			t.Fatalf("list: %v", err)
		}
		n += len(p.Tasks)
		if p.NextCursor == "" {
			return n
		}
		f.Cursor = p.NextCursor
	}
}

// check compares every task's final record (and, where the kind says what it prints, its
// output) with its kind, and returns the failures.
func check(c *client.Client, subs []submitted, got map[string]task.Task) (passed int, failures []string) {
	var mu sync.Mutex
	fail := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		failures = append(failures, fmt.Sprintf(format, args...))
	}
	sem := make(chan struct{}, 16)
	var wg sync.WaitGroup
	for _, s := range subs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			if why := checkOne(c, s, got); why != "" {
				fail("%s %s: %s", s.kind.name, s.id, why)
			}
		}()
	}
	wg.Wait()
	return len(subs) - len(failures), failures
}

func checkOne(c *client.Client, s submitted, got map[string]task.Task) string {
	tk, ok := got[s.id]
	switch {
	case !ok:
		return "lost: not listed"
	case !tk.Final():
		return fmt.Sprintf("not final: %s", tk.State)
	case tk.Outcome() != s.kind.want && (s.kind.or == "" || tk.Outcome() != s.kind.or):
		return fmt.Sprintf("outcome %s (%s), want %s", tk.Outcome(), tk.Verdict.Message, s.kind.want)
	case len(tk.Attempts) != 1:
		return fmt.Sprintf("%d attempts, want exactly 1", len(tk.Attempts))
	case s.kind.exitCode != nil && (tk.Verdict.ExitCode == nil || *tk.Verdict.ExitCode != *s.kind.exitCode):
		return fmt.Sprintf("exit code %v, want %d", tk.Verdict.ExitCode, *s.kind.exitCode)
	}
	if s.kind.stdout == "" {
		return ""
	}
	v, err := c.Verdict(context.Background(), s.id)
	if err != nil {
		return fmt.Sprintf("verdict: %v", err)
	}
	if v.Stdout == nil || *v.Stdout != s.kind.stdout {
		return fmt.Sprintf("stdout %q, want %q", deref(v.Stdout), s.kind.stdout)
	}
	return ""
}

func deref(s *string) string {
	if s == nil {
		return "<none>"
	}
	return *s
}

// report logs "N passed, M failed" and fails t with each failure.
func report(t *testing.T, what string, passed int, failures []string) {
	t.Helper()
	t.Logf("%s: %d passed, %d failed", what, passed, len(failures))
	for i, f := range failures {
		if i == 20 {
			t.Errorf("… and %d more", len(failures)-i)
			break
		}
		t.Error(f)
	}
}

// waitFor polls cond until it holds, or fails t after limit.
func waitFor(t *testing.T, d *daemon, what string, limit time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		select {
		case <-d.exited:
			t.Fatalf("agentboxd exited while waiting for %s", what)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s after %s", what, limit)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
