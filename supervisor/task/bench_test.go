package task

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/agentbox/agentbox/outcome"
	"github.com/agentbox/agentbox/verdict"
)

// BenchmarkSerialization is the JSON every task crosses, each encoded and decoded back:
// the submit request (POST /v1/tasks), the task record (its KV value, rewritten at every
// change: here with three attempts), the final verdict with its output (what `agentbox
// run --json` prints and GET …/verdict serves) and the API error. The sandbox's own spawn
// spec and result (sandbox/wire.go) are unexported and have their fuzz tests there.
func BenchmarkSerialization(b *testing.B) {
	req := benchRequest()
	res, err := Resolve(req, 2)
	if err != nil {
		b.Fatal(err)
	}
	v := benchVerdict(res)
	rec := benchRecord(req, res, v)
	apiErr := verdict.Errorf(verdict.InvalidArgument, "limits.memory", "64Q", "limits.memory %q: want a size such as 256Mi", "64Q")
	for _, tc := range []struct {
		name string
		v    any
		out  func() any
	}{
		{name: "submit-request", v: req, out: func() any { return new(SubmitRequest) }},
		{name: "task-record", v: rec, out: func() any { return new(Task) }},
		{name: "verdict", v: v, out: func() any { return new(verdict.Verdict) }},
		{name: "api-error", v: apiErr, out: func() any { return new(verdict.Error) }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			var size int
			b.ReportAllocs()
			for b.Loop() {
				raw, err := json.Marshal(tc.v)
				if err != nil {
					b.Fatal(err)
				}
				if err := json.Unmarshal(raw, tc.out()); err != nil {
					b.Fatal(err)
				}
				size = len(raw)
			}
			b.ReportMetric(float64(size), "bytes/msg")
		})
	}
}

func benchRequest() SubmitRequest {
	return SubmitRequest{
		Module: "a3f1c0d2e4b5a6978812345678901234567890abcdef0123456789abcdef0123",
		Args:   []string{"--task", "summarise", "--max-tokens", "512"},
		Env:    []string{"LANG=C.UTF-8", "AGENT_ID=42"},
		Stdin:  []byte(`{"text": "a short task description of about a hundred bytes, as an agent gets it"}`),
		Limits: Limits{Memory: "128Mi", Timeout: "10s", CPUs: 0.5},
		Retry:  RetryPolicy{RetryOn: []outcome.Outcome{outcome.SandboxError, outcome.Timeout}},
		Labels: map[string]string{"team": "search", "run": "nightly-2026-12-01"},
	}
}

func benchVerdict(res Resolved) verdict.Verdict {
	stdout, stderr, code := `{"summary": "forty-two words of output, give or take"}`+"\n", "", uint32(0)
	return verdict.Verdict{Outcome: outcome.OK, Message: "guest returned from _start", ExitCode: &code,
		Stdout: &stdout, Stderr: &stderr,
		Usage:    verdict.Usage{WallMS: 16, CompileMS: 0, CPUMS: 12, PeakMemoryBytes: 2076672},
		Limits:   res.Limits.Verdict(),
		Warnings: []string{}}
}

// benchRecord is a final record after two sandbox_error attempts and a third that passed.
func benchRecord(req SubmitRequest, res Resolved, v verdict.Verdict) Task {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	rec := Task{ID: "01JDZ6Q3T4W5X6Y7Z8A9B0C1D2", Tenant: "default", State: Done, Module: req.Module, Args: req.Args,
		Env: req.Env, Limits: res.Limits.Verdict(), RunLimits: res.Limits, Retry: res.Retry, Labels: req.Labels,
		Priority: res.Priority, StdinBytes: len(req.Stdin), CreatedAt: now, UpdatedAt: now.Add(3 * time.Second)}
	final := v.WithoutOutput()
	failed := verdict.Verdict{Outcome: outcome.SandboxError, Message: "spawn: fork/exec: resource temporarily unavailable",
		Limits: res.Limits.Verdict(), Warnings: []string{}}
	for n := 1; n <= 3; n++ {
		start, end := now.Add(time.Duration(n)*time.Second), now.Add(time.Duration(n)*time.Second+40*time.Millisecond)
		a := Attempt{N: n, Host: "host-1/incarnation-7", StartedAt: start, EndedAt: &end, Verdict: &failed}
		if n == 3 {
			a.FirstOutputAt, a.Verdict = &start, &final
		}
		rec.Attempts = append(rec.Attempts, a)
	}
	rec.Verdict = &final
	return rec
}
