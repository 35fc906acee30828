package supervisor

import (
	"context"
	"encoding/json"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/agentbox/agentbox/outcome"
	"github.com/agentbox/agentbox/sandbox"
	"github.com/agentbox/agentbox/supervisor/task"
	"github.com/agentbox/agentbox/verdict"
)

// TestSubmitHello: the example agent runs to ok through the daemon, and its verdict is the
// very shape `agentbox run --json` prints for a direct run of the same module.
func TestSubmitHello(t *testing.T) {
	h := newHarness(t)
	s := startService(t, h, baseConfig("host-a"), nil)
	digest := upload(t, s, "a", "examples/hello/hello.wasm")
	rec := submit(t, s, "a", task.SubmitRequest{Module: digest, Args: []string{"x"}})
	if rec.State != task.Queued || rec.ID == "" || rec.Tenant != "a" || rec.Limits.Memory != "256Mi" {
		t.Fatalf("accepted record %+v", rec)
	}
	rec = waitFinal(t, s, "a", rec.ID)
	if rec.Outcome() != outcome.OK || len(rec.Attempts) != 1 || rec.Attempts[0].Host != "host-a" {
		t.Fatalf("final record %+v: want ok in one attempt on host-a", rec)
	}
	if rec.Verdict.Stdout != nil || rec.Attempts[0].Verdict.Stdout != nil {
		t.Error("the record carries output; only the verdict endpoint does")
	}
	v, err := s.Verdict(context.Background(), "a", rec.ID)
	if err != nil {
		t.Fatalf("Verdict: %v", err)
	}
	if v.Outcome != outcome.OK || v.Stdout == nil || *v.Stdout != "hello from an agent inside agentbox\narg 1: x\n" || v.ExitCode == nil || *v.ExitCode != 0 {
		t.Fatalf("verdict %+v: want ok with the agent's greeting", v)
	}

	direct, err := h.sb.Run(context.Background(), sandbox.Spec{Module: moduleBytes(t, "examples/hello/hello.wasm"), Args: []string{"main.wasm", "x"}})
	if err != nil {
		t.Fatal(err)
	}
	want, got := keys(t, direct.Verdict()), keys(t, v)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("daemon verdict keys %v\ndirect run keys  %v", got, want)
	}
	if !reflect.DeepEqual(v.Limits, direct.Verdict().Limits) {
		t.Errorf("limits %+v, a direct run with the defaults %+v", v.Limits, direct.Verdict().Limits)
	}
	waitFor(t, "the task counted finished ok", func() bool { return s.obs.count(outcome.OK) == 1 })
}

// keys lists the JSON keys of v, nested ones as a.b.
func keys(t *testing.T, v verdict.Verdict) []string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	json.Unmarshal(b, &m)
	var out []string
	var walk func(prefix string, m map[string]any)
	walk = func(prefix string, m map[string]any) {
		for k, v := range m {
			out = append(out, prefix+k)
			if sub, ok := v.(map[string]any); ok {
				walk(prefix+k+".", sub)
			}
		}
	}
	walk("", m)
	sort.Strings(out)
	return out
}

// TestRetry: a fault of ours is retried up to the policy's attempts, and every attempt's
// verdict is kept; the guest's own outcomes are retried only when the policy names them.
func TestRetry(t *testing.T) {
	h := newHarness(t)
	tests := []struct {
		name      string
		module    string
		failFirst int // injected sandbox_error results
		errFirst  int // injected refusals
		retry     task.RetryPolicy
		want      []outcome.Outcome // every attempt's outcome; the last is the verdict
	}{
		{name: "sandbox errors, then ok", module: "hello.wasm", failFirst: 2, retry: fast(0),
			want: []outcome.Outcome{outcome.SandboxError, outcome.SandboxError, outcome.OK}},
		{name: "sandbox errors past the attempts", module: "hello.wasm", failFirst: 5, retry: fast(2),
			want: []outcome.Outcome{outcome.SandboxError, outcome.SandboxError}},
		{name: "a refused spec is our fault", module: "hello.wasm", errFirst: 1, retry: fast(0),
			want: []outcome.Outcome{outcome.SandboxError, outcome.OK}},
		{name: "one attempt only", module: "hello.wasm", failFirst: 1, retry: fast(1),
			want: []outcome.Outcome{outcome.SandboxError}},
		{name: "trap is not retried", module: "trap.wasm", retry: fast(3),
			want: []outcome.Outcome{outcome.Trap}},
		{name: "exit is not retried", module: "exit3.wasm", retry: fast(3),
			want: []outcome.Outcome{outcome.Exit}},
		{name: "trap retried when asked", module: "trap.wasm", retry: fast(2, outcome.Trap),
			want: []outcome.Outcome{outcome.Trap, outcome.Trap}},
		{name: "exit retried when asked", module: "exit3.wasm", retry: fast(3, outcome.Exit),
			want: []outcome.Outcome{outcome.Exit, outcome.Exit, outcome.Exit}},
		{name: "asking for trap keeps sandbox_error out", module: "hello.wasm", failFirst: 1, retry: fast(3, outcome.Trap),
			want: []outcome.Outcome{outcome.SandboxError}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newFaultRunner(h.sb)
			r.failFirst, r.errFirst = tt.failFirst, tt.errFirst
			s := startService(t, h, baseConfig("host-"+strings.ReplaceAll(tt.name, " ", "-")), r)
			digest := upload(t, s, "a", tt.module)
			rec := submit(t, s, "a", task.SubmitRequest{Module: digest, Args: []string{"t"}, Retry: tt.retry})
			rec = waitFinal(t, s, "a", rec.ID)
			if got := outcomes(rec); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("attempts %v, want %v", got, tt.want)
			}
			last := tt.want[len(tt.want)-1]
			if rec.Outcome() != last {
				t.Fatalf("verdict %s, want %s", rec.Outcome(), last)
			}
			for i, a := range rec.Attempts {
				if a.N != i+1 || a.EndedAt == nil || a.Verdict.Message == "" || a.Verdict.Warnings == nil {
					t.Errorf("attempt %d: %+v", i+1, a)
				}
			}
			v, err := s.Verdict(context.Background(), "a", rec.ID)
			if err != nil || v.Outcome != last {
				t.Fatalf("Verdict: %+v %v, want %s", v, err, last)
			}
			// The observer hears of the end after the record's write.
			waitFor(t, "the task counted finished", func() bool { return s.obs.count(last) == 1 })
			if s.obs.retryCount() != len(tt.want)-1 {
				t.Errorf("observer: %d retries, want %d", s.obs.retryCount(), len(tt.want)-1)
			}
		})
	}
}

// TestModules: uploads are compiled in the sandbox and refused with the reason; a tenant
// never sees or runs another's module.
func TestModules(t *testing.T) {
	h := newHarness(t)
	cfg := baseConfig("host-a")
	cfg.MaxModuleBytes = 1 << 20
	s := startService(t, h, cfg, nil)
	ctx := context.Background()
	digest := upload(t, s, "a", "hello.wasm")

	tests := []struct {
		name  string
		do    func() error
		code  verdict.Code
		field string
		says  string
	}{
		{name: "invalid bytes", do: func() error { _, err := s.PutModule(ctx, "a", moduleBytes(t, "invalid.wasm")); return err },
			code: verdict.InvalidArgument, field: "module", says: "invalid module"},
		{name: "no _start", do: func() error { _, err := s.PutModule(ctx, "a", moduleBytes(t, "nostart.wasm")); return err },
			code: verdict.InvalidArgument, field: "module", says: "_start"},
		{name: "too large", do: func() error { _, err := s.PutModule(ctx, "a", make([]byte, 1<<20+1)); return err },
			code: verdict.TooLarge, field: "module", says: "1Mi"},
		{name: "another tenant's module: get", do: func() error { _, err := s.GetModule(ctx, "b", digest); return err },
			code: verdict.NotFound, field: "digest"},
		{name: "another tenant's module: delete", do: func() error { return s.DeleteModule(ctx, "b", digest) },
			code: verdict.NotFound, field: "digest"},
		{name: "another tenant's module: submit", do: func() error {
			_, _, err := s.Submit(ctx, "b", task.SubmitRequest{Module: digest})
			return err
		}, code: verdict.NotFound, field: "module"},
		{name: "a bad limit", do: func() error {
			_, _, err := s.Submit(ctx, "a", task.SubmitRequest{Module: digest, Limits: task.Limits{Timeout: "forever"}})
			return err
		}, code: verdict.InvalidArgument, field: "limits.timeout", says: "forever"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ve := codeOf(t, tt.do())
			if ve.Code != tt.code || ve.Field != tt.field || !strings.Contains(ve.Message, tt.says) {
				t.Errorf("error %+v, want code %s field %s saying %q", ve, tt.code, tt.field, tt.says)
			}
		})
	}
	if ms, err := s.ListModules(ctx, "b"); err != nil || len(ms) != 0 {
		t.Errorf("tenant b lists %+v %v", ms, err)
	}
	if m, err := s.PutModule(ctx, "a", moduleBytes(t, "hello.wasm")); err != nil || m.Digest != digest {
		t.Errorf("a second upload of the same module: %+v %v", m, err)
	}
	if err := s.DeleteModule(ctx, "a", digest); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetModule(ctx, "a", digest); codeOf(t, err).Code != verdict.NotFound {
		t.Errorf("module still there after delete: %v", err)
	}
}

// TestModuleDeletedWhileQueued: a queued task whose module is deleted before it runs ends
// invalid_module, once, and is not retried.
func TestModuleDeletedWhileQueued(t *testing.T) {
	h := newHarness(t)
	r := newFaultRunner(h.sb)
	r.gate = make(chan struct{})
	cfg := baseConfig("host-a")
	cfg.Slots = 1
	s := startService(t, h, cfg, r)
	blocker := upload(t, s, "a", "hello.wasm")
	victim := upload(t, s, "a", "exit3.wasm")
	first := submit(t, s, "a", task.SubmitRequest{Module: blocker, Args: []string{"blocker"}})
	if n := r.nextStart(t); n != "blocker" {
		t.Fatalf("started %s", n)
	}
	rec := submit(t, s, "a", task.SubmitRequest{Module: victim, Args: []string{"victim"}})
	if err := s.DeleteModule(context.Background(), "a", victim); err != nil {
		t.Fatal(err)
	}
	r.release(t)
	waitFinal(t, s, "a", first.ID)
	rec = waitFinal(t, s, "a", rec.ID)
	if got := outcomes(rec); !reflect.DeepEqual(got, []outcome.Outcome{outcome.InvalidModule}) {
		t.Fatalf("attempts %v, want one invalid_module", got)
	}
}

// TestRunInputs: what a task carries (argv after the program name, env, stdin) reaches
// the guest, and its output the verdict.
func TestRunInputs(t *testing.T) {
	h := newHarness(t)
	s := startService(t, h, baseConfig("host-a"), nil)
	tests := []struct {
		name   string
		module string
		req    task.SubmitRequest
		stdout string
	}{
		{name: "args", module: "args.wasm", req: task.SubmitRequest{Args: []string{"one", "two words"}}, stdout: "main.wasm\none\ntwo words\n"},
		{name: "env", module: "env.wasm", req: task.SubmitRequest{Env: []string{"A=1", "B=two"}}, stdout: "A=1\nB=two\n"},
		{name: "stdin", module: "echo.wasm", req: task.SubmitRequest{Stdin: []byte("fed to the guest\n")}, stdout: "fed to the guest\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.req.Module = upload(t, s, "a", tt.module)
			rec := submit(t, s, "a", tt.req)
			if rec.StdinBytes != len(tt.req.Stdin) {
				t.Errorf("stdin_bytes %d, want %d", rec.StdinBytes, len(tt.req.Stdin))
			}
			rec = waitFinal(t, s, "a", rec.ID)
			v, err := s.Verdict(context.Background(), "a", rec.ID)
			if err != nil || v.Outcome != outcome.OK || v.Stdout == nil || *v.Stdout != tt.stdout {
				t.Fatalf("verdict %+v (%v), want ok with stdout %q", v, err, tt.stdout)
			}
		})
	}
}
