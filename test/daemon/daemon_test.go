package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/agentbox/agentbox/outcome"
	"github.com/agentbox/agentbox/supervisor/api"
	"github.com/agentbox/agentbox/supervisor/task"
	"github.com/agentbox/agentbox/verdict"
)

// TestVerdictIsRunJSON: a task through the daemon gets the verdict `agentbox run --json`
// prints for the same module: the same keys, outcome, exit code and output.
func TestVerdictIsRunJSON(t *testing.T) {
	d := startDaemon(t, options{})
	c := d.client("")
	ctx := context.Background()
	digest := push(t, c, helloModule)
	tk, err := c.Submit(ctx, task.SubmitRequest{Module: digest, Args: []string{"alice"}})
	if err != nil {
		t.Fatal(err)
	}
	final := waitFinal(t, c, tk.ID)
	if final.Outcome() != outcome.OK || len(final.Attempts) != 1 {
		t.Fatalf("task %s: outcome %s after %d attempts, want ok after 1", tk.ID, final.Outcome(), len(final.Attempts))
	}
	got, err := c.Verdict(ctx, tk.ID)
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(filepath.Join(bin, "agentbox"), "run", "--json", "--cache-dir", filepath.Join(d.dir, "cache"),
		helloModule, "alice").Output()
	if err != nil {
		t.Fatalf("agentbox run: %v", err)
	}
	var want verdict.Verdict
	if err := json.Unmarshal(out, &want); err != nil {
		t.Fatal(err)
	}
	if got.Outcome != want.Outcome || *got.ExitCode != *want.ExitCode || *got.Stdout != *want.Stdout || got.Limits != want.Limits {
		t.Errorf("daemon verdict %+v\nagentbox run --json %+v", got, want)
	}
	if gk, wk := keys(t, got), keysOf(t, out); !reflect.DeepEqual(gk, wk) {
		t.Errorf("daemon verdict keys %v, agentbox run --json keys %v", gk, wk)
	}
}

func keys(t *testing.T, v any) []string {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return keysOf(t, b)
}

func keysOf(t *testing.T, b []byte) []string {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TestOutcomesAndRetries: each guest outcome arrives as the final verdict after exactly
// one attempt (none of them is retried by default), and a policy that names an outcome
// retries it up to max_attempts, keeping every attempt.
func TestOutcomesAndRetries(t *testing.T) {
	d := startDaemon(t, options{})
	c := d.client("")
	ctx := context.Background()
	tests := []struct {
		name     string
		module   string
		limits   task.Limits
		retry    task.RetryPolicy
		want     outcome.Outcome
		attempts int
	}{
		{name: "exit", module: exit3Module, want: outcome.Exit, attempts: 1},
		{name: "trap", module: trapModule, want: outcome.Trap, attempts: 1},
		{name: "timeout", module: loopModule, limits: task.Limits{Timeout: "1s"}, want: outcome.Timeout, attempts: 1},
		{name: "trap retried by policy", module: trapModule, retry: task.RetryPolicy{MaxAttempts: 3, RetryOn: []outcome.Outcome{outcome.Trap}, BackoffBase: "1ms", BackoffMax: "10ms"},
			want: outcome.Trap, attempts: 3},
	}
	ids := make([]string, len(tests))
	for i, tt := range tests {
		tk, err := c.Submit(ctx, task.SubmitRequest{Module: push(t, c, tt.module), Limits: tt.limits, Retry: tt.retry})
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		ids[i] = tk.ID
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			final := waitFinal(t, c, ids[i])
			if final.Outcome() != tt.want || len(final.Attempts) != tt.attempts {
				t.Fatalf("outcome %s after %d attempts, want %s after %d", final.Outcome(), len(final.Attempts), tt.want, tt.attempts)
			}
			for _, a := range final.Attempts {
				if a.Verdict == nil || a.Verdict.Outcome != tt.want {
					t.Errorf("attempt %d verdict %+v, want %s", a.N, a.Verdict, tt.want)
				}
			}
		})
	}
}

// TestTenantIsolation: tenant B's token cannot see, wait on, cancel or fetch the output
// of tenant A's tasks, nor use A's modules; a wrong or missing token gets 401 and nothing.
func TestTenantIsolation(t *testing.T) {
	d := startDaemon(t, options{tokens: map[string]string{"token-a": "alpha", "token-b": "beta"}})
	a, b := d.client("token-a"), d.client("token-b")
	ctx := context.Background()
	digest := push(t, a, helloModule)
	tk, err := a.Submit(ctx, task.SubmitRequest{Module: digest})
	if err != nil {
		t.Fatal(err)
	}
	waitFinal(t, a, tk.ID)
	calls := []struct {
		name string
		call func() error
	}{
		{"get", func() error { _, err := b.Get(ctx, tk.ID); return err }},
		{"wait", func() error { _, err := b.Wait(ctx, tk.ID); return err }},
		{"verdict", func() error { _, err := b.Verdict(ctx, tk.ID); return err }},
		{"cancel", func() error { _, err := b.Cancel(ctx, tk.ID); return err }},
		{"module get", func() error { _, err := b.GetModule(ctx, digest); return err }},
		{"module delete", func() error { return b.DeleteModule(ctx, digest) }},
		{"submit with A's module", func() error { _, err := b.Submit(ctx, task.SubmitRequest{Module: digest}); return err }},
	}
	for _, cl := range calls {
		t.Run(cl.name, func(t *testing.T) {
			if code := codeOf(cl.call()); code != verdict.NotFound {
				t.Errorf("tenant beta's %s of alpha's resource: code %q, want not_found", cl.name, code)
			}
		})
	}
	if page, err := b.List(ctx, task.Filter{}); err != nil || len(page.Tasks) != 0 {
		t.Errorf("beta lists %d tasks (%v), want none of alpha's", len(page.Tasks), err)
	}
	if ms, err := b.ListModules(ctx); err != nil || len(ms) != 0 {
		t.Errorf("beta lists %d modules (%v), want none of alpha's", len(ms), err)
	}
	if _, err := a.GetModule(ctx, digest); err != nil {
		t.Errorf("alpha lost its module to beta's delete: %v", err)
	}
	for _, tok := range []string{"", "token-c", "token-a2", "TOKEN-A"} {
		_, err := d.client(tok).Get(ctx, tk.ID)
		if code := codeOf(err); code != verdict.Unauthenticated {
			t.Errorf("token %q: code %q, want unauthenticated", tok, code)
		}
	}
}

func codeOf(err error) verdict.Code {
	var ve *verdict.Error
	if errors.As(err, &ve) {
		return ve.Code
	}
	return ""
}

// TestCancel: a queued task never runs; a running one is killed and ends cancelled.
func TestCancel(t *testing.T) {
	d := startDaemon(t, options{args: []string{"--slots", "1"}})
	c := d.client("")
	ctx := context.Background()
	loop := push(t, c, loopModule)
	running, err := c.Submit(ctx, task.SubmitRequest{Module: loop, Limits: task.Limits{Timeout: "5m"}})
	if err != nil {
		t.Fatal(err)
	}
	queued, err := c.Submit(ctx, task.SubmitRequest{Module: loop})
	if err != nil {
		t.Fatal(err)
	}
	waitState(t, c, running.ID, task.Running)
	if _, err := c.Cancel(ctx, queued.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Cancel(ctx, running.ID); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{queued.ID, running.ID} {
		if f := waitFinal(t, c, id); f.Outcome() != outcome.Cancelled {
			t.Errorf("task %s: %s, want cancelled", id, f.Outcome())
		}
	}
	if f := waitFinal(t, c, queued.ID); len(f.Attempts) != 0 {
		t.Errorf("the task cancelled while queued ran %d attempts", len(f.Attempts))
	}
}

// waitState polls a task until it reaches state.
func waitState(t *testing.T, c interface {
	Get(context.Context, string) (task.Task, error)
}, id string, s task.State) {
	t.Helper()
	for {
		tk, err := c.Get(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if tk.State == s {
			return
		}
		if tk.Final() {
			t.Fatalf("task %s final (%s) before reaching %s", id, tk.Outcome(), s)
		}
	}
}

// TestSIGTERMRequeues: a task still running when the grace period ends is killed and
// queued again; the next start runs it to its verdict, the interrupted attempt in its
// history.
func TestSIGTERMRequeues(t *testing.T) {
	d := startDaemon(t, options{args: []string{"--grace", "10ms"}})
	c := d.client("")
	ctx := context.Background()
	tk, err := c.Submit(ctx, task.SubmitRequest{Module: push(t, c, loopModule), Limits: task.Limits{Timeout: "3s"}})
	if err != nil {
		t.Fatal(err)
	}
	waitState(t, c, tk.ID, task.Running)
	d.signal(syscall.SIGTERM)
	d.restart()
	final := waitFinal(t, d.client(""), tk.ID)
	if final.Outcome() != outcome.Timeout || len(final.Attempts) != 2 {
		t.Fatalf("outcome %s after %d attempts, want timeout after 2 (the first interrupted)", final.Outcome(), len(final.Attempts))
	}
	if v := final.Attempts[0].Verdict; v == nil || v.Outcome != outcome.SandboxError || !strings.Contains(v.Message, "shut down") {
		t.Errorf("interrupted attempt's verdict %+v, want sandbox_error saying the daemon shut down", v)
	}
}

// TestHealthAndMetrics: /healthz, /readyz and /metrics answer without a token, and the
// metrics count what ran.
func TestHealthAndMetrics(t *testing.T) {
	d := startDaemon(t, options{tokens: map[string]string{"tok": "alpha"}})
	c := d.client("tok")
	tk, err := c.Submit(context.Background(), task.SubmitRequest{Module: push(t, c, helloModule)})
	if err != nil {
		t.Fatal(err)
	}
	waitFinal(t, c, tk.ID)
	for _, p := range []string{"/healthz", "/readyz"} {
		if code := d.get(p); code != 200 {
			t.Errorf("GET %s: %d, want 200", p, code)
		}
	}
	// The verdict is visible before the counters move (the ack and the metrics follow the
	// final write): poll until they show it.
	want := []string{`agentbox_tasks_total{outcome="ok"} 1`, `agentbox_jetstream_up 1`, `agentbox_build_info{`}
	deadline := time.Now().Add(time.Minute)
	for {
		body := d.metrics()
		missing := ""
		for _, w := range want {
			if !strings.Contains(body, w) {
				missing = w
			}
		}
		if missing == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("/metrics lacks %q:\n%s", missing, body)
		}
	}
}

func (d *daemon) metrics() string {
	resp, err := d.http().Get("http://agentboxd/metrics")
	if err != nil {
		d.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return string(body)
}

// TestSIGHUPReloads: SIGHUP swaps the tokens file and the --config limits live.
func TestSIGHUPReloads(t *testing.T) {
	d := startDaemon(t, options{tokens: map[string]string{"old-token": "alpha"}})
	ctx := context.Background()
	if _, err := d.client("old-token").List(ctx, task.Filter{}); err != nil {
		t.Fatalf("the first token: %v", err)
	}
	tokens := filepath.Join(d.dir, "tokens")
	if err := os.WriteFile(tokens, []byte(api.HashToken("new-token")+" alpha\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	d.cmd.Process.Signal(syscall.SIGHUP)
	for {
		_, errNew := d.client("new-token").List(ctx, task.Filter{})
		_, errOld := d.client("old-token").List(ctx, task.Filter{})
		if errNew == nil && codeOf(errOld) == verdict.Unauthenticated {
			break
		}
		select {
		case <-d.exited:
			t.Fatalf("agentboxd exited on SIGHUP:\n%s", d.log)
		case <-time.After(20 * time.Millisecond):
		}
	}
	// A tokens file that fails to load changes nothing: the daemon keeps serving new-token.
	os.WriteFile(tokens, []byte("not a hash line\n"), 0o600)
	d.cmd.Process.Signal(syscall.SIGHUP)
	for !strings.Contains(d.log.String(), "reload: tokens not changed") {
		select {
		case <-d.exited:
			t.Fatalf("agentboxd exited on a bad tokens file:\n%s", d.log)
		case <-time.After(20 * time.Millisecond):
		}
	}
	if _, err := d.client("new-token").List(ctx, task.Filter{}); err != nil {
		t.Errorf("a bad tokens file on SIGHUP locked out the current token: %v", err)
	}
}
