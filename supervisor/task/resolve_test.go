package task

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/agentbox/agentbox/outcome"
	"github.com/agentbox/agentbox/sandbox"
	"github.com/agentbox/agentbox/verdict"
)

const digest = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// TestResolveDefaults: an empty request gets the CLI's defaults, which are the sandbox
// package's constants (agentbox run's flags default to the same ones), and the verdict's
// echo of them is what `agentbox run --json` prints.
func TestResolveDefaults(t *testing.T) {
	r, err := Resolve(SubmitRequest{Module: digest}, 2)
	if err != nil {
		t.Fatalf("Resolve: %v", err)
	}
	wantLimits := sandbox.Limits{MemoryBytes: sandbox.DefaultMemory, CPUs: sandbox.DefaultCPUs, Pids: sandbox.DefaultPids,
		Timeout: sandbox.DefaultTimeout, OutputBytes: sandbox.DefaultOutputLimit, ClockResolution: sandbox.DefaultClockResolution}
	if r.Limits != wantLimits {
		t.Errorf("limits %+v, want the sandbox defaults %+v", r.Limits, wantLimits)
	}
	wantRetry := RetryPolicy{MaxAttempts: DefaultMaxAttempts, RetryOn: []outcome.Outcome{outcome.SandboxError},
		BackoffBase: DefaultBackoffBase.String(), BackoffMax: DefaultBackoffMax.String()}
	if !reflect.DeepEqual(r.Retry, wantRetry) || r.BackoffBase != DefaultBackoffBase || r.BackoffMax != DefaultBackoffMax {
		t.Errorf("retry %+v (%s, %s), want %+v", r.Retry, r.BackoffBase, r.BackoffMax, wantRetry)
	}
	if r.Priority != Normal {
		t.Errorf("priority %q, want normal", r.Priority)
	}
	v := r.Limits.Verdict()
	if v.Memory != "256Mi" || v.Timeout != "30s" || v.OutputLimit != "1Mi" || v.ClockResolution != "1ms" || v.CPUTime != "" || v.Pids != 64 || v.CPUs != 1 {
		t.Errorf("verdict limits %+v: want the CLI's 256Mi, 30s, 1Mi, 1ms, no cpu_time, 64 pids, 1 cpu", v)
	}
}

// TestResolveAccepts: values at the bounds, and the forms the CLI's flags take.
func TestResolveAccepts(t *testing.T) {
	tests := []struct {
		name  string
		req   func(*SubmitRequest)
		check func(Resolved) bool
	}{
		{name: "memory at the least", req: func(r *SubmitRequest) { r.Limits.Memory = "32Mi" },
			check: func(r Resolved) bool { return r.Limits.MemoryBytes == 32<<20 }},
		{name: "cpus at the host's count", req: func(r *SubmitRequest) { r.Limits.CPUs = 2 },
			check: func(r Resolved) bool { return r.Limits.CPUs == 2 }},
		{name: "cpus at the least", req: func(r *SubmitRequest) { r.Limits.CPUs = 0.01 },
			check: func(r Resolved) bool { return r.Limits.CPUs == 0.01 }},
		{name: "pids at the least", req: func(r *SubmitRequest) { r.Limits.Pids = 8 },
			check: func(r Resolved) bool { return r.Limits.Pids == 8 }},
		{name: "cpu_time 0 is no limit", req: func(r *SubmitRequest) { r.Limits.CPUTime = "0s" },
			check: func(r Resolved) bool { return r.Limits.CPUTime == 0 }},
		{name: "cpu_time", req: func(r *SubmitRequest) { r.Limits.CPUTime = "1m30s" },
			check: func(r Resolved) bool { return r.Limits.CPUTime == 90*time.Second }},
		{name: "clock resolution at the most", req: func(r *SubmitRequest) { r.Limits.ClockResolution = "500ms" },
			check: func(r Resolved) bool { return r.Limits.ClockResolution == 500*time.Millisecond }},
		{name: "output limit", req: func(r *SubmitRequest) { r.Limits.OutputLimit = "4Ki" },
			check: func(r Resolved) bool { return r.Limits.OutputBytes == 4<<10 }},
		{name: "retry policy", req: func(r *SubmitRequest) {
			r.Retry = RetryPolicy{MaxAttempts: MaxMaxAttempts, RetryOn: []outcome.Outcome{outcome.Trap, outcome.Exit}, BackoffBase: "10ms", BackoffMax: "10ms"}
		}, check: func(r Resolved) bool {
			return r.Retry.MaxAttempts == MaxMaxAttempts && reflect.DeepEqual(r.Retry.RetryOn, []outcome.Outcome{outcome.Trap, outcome.Exit}) &&
				r.BackoffBase == 10*time.Millisecond && r.BackoffMax == 10*time.Millisecond && r.Retry.BackoffBase == "10ms"
		}},
		{name: "high priority", req: func(r *SubmitRequest) { r.Priority = High },
			check: func(r Resolved) bool { return r.Priority == High }},
		{name: "args and env", req: func(r *SubmitRequest) { r.Args = []string{"a", ""}; r.Env = []string{"K=", "A=b=c"} },
			check: func(r Resolved) bool { return true }},
		{name: "labels at the most", req: func(r *SubmitRequest) { r.Labels = labels(MaxLabels, MaxLabelBytes) },
			check: func(r Resolved) bool { return true }},
		{name: "stdin at the most", req: func(r *SubmitRequest) { r.Stdin = make([]byte, MaxStdinBytes) },
			check: func(r Resolved) bool { return true }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := SubmitRequest{Module: digest}
			tt.req(&req)
			r, err := Resolve(req, 2)
			if err != nil {
				t.Fatalf("Resolve: %v", err)
			}
			if !tt.check(r) {
				t.Errorf("resolved %+v", r)
			}
		})
	}
}

func labels(n, size int) map[string]string {
	m := map[string]string{}
	for i := 0; i < n; i++ {
		k := strings.Repeat("k", size-3) + string(rune('a'+i/26)) + string(rune('a'+i%26)) + "x"
		m[k[:size]] = strings.Repeat("v", size)
	}
	return m
}

// TestResolveRefuses: every refusal is a *verdict.Error that names the JSON field and the
// value as the client wrote it, and says so in its message too.
func TestResolveRefuses(t *testing.T) {
	tests := []struct {
		name  string
		req   func(*SubmitRequest)
		code  verdict.Code
		field string
		value string
	}{
		{name: "module not a digest", req: func(r *SubmitRequest) { r.Module = "hello.wasm" }, field: "module", value: "hello.wasm"},
		{name: "module digest in capitals", req: func(r *SubmitRequest) { r.Module = strings.ToUpper(digest) }, field: "module", value: strings.ToUpper(digest)},
		{name: "module missing", req: func(r *SubmitRequest) { r.Module = "" }, field: "module", value: ""},
		{name: "memory unparsable", req: func(r *SubmitRequest) { r.Limits.Memory = "lots" }, field: "limits.memory", value: "lots"},
		{name: "memory zero", req: func(r *SubmitRequest) { r.Limits.Memory = "0" }, field: "limits.memory", value: "0"},
		{name: "memory below the least", req: func(r *SubmitRequest) { r.Limits.Memory = "16Mi" }, field: "limits.memory", value: "16Mi"},
		{name: "output limit zero", req: func(r *SubmitRequest) { r.Limits.OutputLimit = "0" }, field: "limits.output_limit", value: "0"},
		{name: "output limit unparsable", req: func(r *SubmitRequest) { r.Limits.OutputLimit = "-1" }, field: "limits.output_limit", value: "-1"},
		{name: "timeout unparsable", req: func(r *SubmitRequest) { r.Limits.Timeout = "soon" }, field: "limits.timeout", value: "soon"},
		{name: "timeout zero", req: func(r *SubmitRequest) { r.Limits.Timeout = "0s" }, field: "limits.timeout", value: "0s"},
		{name: "timeout negative", req: func(r *SubmitRequest) { r.Limits.Timeout = "-1s" }, field: "limits.timeout", value: "-1s"},
		{name: "timeout without a unit", req: func(r *SubmitRequest) { r.Limits.Timeout = "30" }, field: "limits.timeout", value: "30"},
		{name: "cpu_time negative", req: func(r *SubmitRequest) { r.Limits.CPUTime = "-5s" }, field: "limits.cpu_time", value: "-5s"},
		{name: "clock resolution zero", req: func(r *SubmitRequest) { r.Limits.ClockResolution = "0s" }, field: "limits.clock_resolution", value: "0s"},
		{name: "clock resolution above the most", req: func(r *SubmitRequest) { r.Limits.ClockResolution = "501ms" }, field: "limits.clock_resolution", value: "501ms"},
		{name: "cpus negative", req: func(r *SubmitRequest) { r.Limits.CPUs = -1 }, field: "limits.cpus", value: "-1"},
		{name: "cpus below the least", req: func(r *SubmitRequest) { r.Limits.CPUs = 0.001 }, field: "limits.cpus", value: "0.001"},
		{name: "cpus above the host", req: func(r *SubmitRequest) { r.Limits.CPUs = 2.5 }, field: "limits.cpus", value: "2.5"},
		{name: "pids below the least", req: func(r *SubmitRequest) { r.Limits.Pids = 7 }, field: "limits.pids", value: "7"},
		{name: "pids negative", req: func(r *SubmitRequest) { r.Limits.Pids = -1 }, field: "limits.pids", value: "-1"},
		{name: "max attempts negative", req: func(r *SubmitRequest) { r.Retry.MaxAttempts = -1 }, field: "retry.max_attempts", value: "-1"},
		{name: "max attempts above the most", req: func(r *SubmitRequest) { r.Retry.MaxAttempts = MaxMaxAttempts + 1 }, field: "retry.max_attempts", value: "11"},
		{name: "retry on ok", req: func(r *SubmitRequest) { r.Retry.RetryOn = []outcome.Outcome{outcome.OK} }, field: "retry.retry_on[0]", value: "ok"},
		{name: "retry on cancelled", req: func(r *SubmitRequest) { r.Retry.RetryOn = []outcome.Outcome{outcome.Cancelled} }, field: "retry.retry_on[0]", value: "cancelled"},
		{name: "retry on an unknown outcome", req: func(r *SubmitRequest) { r.Retry.RetryOn = []outcome.Outcome{outcome.Trap, "crash"} }, field: "retry.retry_on[1]", value: "crash"},
		{name: "backoff base zero", req: func(r *SubmitRequest) { r.Retry.BackoffBase = "0s" }, field: "retry.backoff_base", value: "0s"},
		{name: "backoff base unparsable", req: func(r *SubmitRequest) { r.Retry.BackoffBase = "1 second" }, field: "retry.backoff_base", value: "1 second"},
		{name: "backoff max unparsable", req: func(r *SubmitRequest) { r.Retry.BackoffMax = "x" }, field: "retry.backoff_max", value: "x"},
		{name: "backoff max below base", req: func(r *SubmitRequest) { r.Retry.BackoffBase = "10s"; r.Retry.BackoffMax = "1s" }, field: "retry.backoff_max", value: "1s"},
		{name: "backoff base above the default max", req: func(r *SubmitRequest) { r.Retry.BackoffBase = "2m" }, field: "retry.backoff_base", value: "2m"},
		{name: "priority unknown", req: func(r *SubmitRequest) { r.Priority = "urgent" }, field: "priority", value: "urgent"},
		{name: "env without =", req: func(r *SubmitRequest) { r.Env = []string{"A=1", "NOEQ"} }, field: "env[1]", value: "NOEQ"},
		{name: "env without a key", req: func(r *SubmitRequest) { r.Env = []string{"=v"} }, field: "env[0]", value: "=v"},
		{name: "too many args", req: func(r *SubmitRequest) { r.Args = make([]string, sandbox.MaxArgs) }, code: verdict.TooLarge, field: "args", value: "4096"},
		{name: "too many env entries", req: func(r *SubmitRequest) { r.Env = repeat("K=v", sandbox.MaxArgs+1) }, code: verdict.TooLarge, field: "env", value: "4097"},
		{name: "args and env too big", req: func(r *SubmitRequest) { r.Args = []string{strings.Repeat("a", sandbox.MaxArgEnvBytes)} }, code: verdict.TooLarge, field: "args", value: "131073"},
		{name: "stdin too big", req: func(r *SubmitRequest) { r.Stdin = make([]byte, MaxStdinBytes+1) }, code: verdict.TooLarge, field: "stdin", value: "1048577"},
		{name: "too many labels", req: func(r *SubmitRequest) { r.Labels = labels(MaxLabels+1, 8) }, code: verdict.TooLarge, field: "labels", value: "33"},
		{name: "label key empty", req: func(r *SubmitRequest) { r.Labels = map[string]string{"": "v"} }, field: "labels", value: ""},
		{name: "label value too long", req: func(r *SubmitRequest) { r.Labels = map[string]string{"k": strings.Repeat("v", MaxLabelBytes+1)} }, field: "labels", value: "k"},
		{name: "idempotency key too long", req: func(r *SubmitRequest) { r.IdempotencyKey = strings.Repeat("k", MaxIdempotencyKey+1) }, code: verdict.TooLarge, field: "idempotency_key", value: "257"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := SubmitRequest{Module: digest}
			tt.req(&req)
			_, err := Resolve(req, 2)
			var ve *verdict.Error
			if !errors.As(err, &ve) {
				t.Fatalf("err = %v (%T), want a *verdict.Error", err, err)
			}
			code := tt.code
			if code == "" {
				code = verdict.InvalidArgument
			}
			if ve.Code != code || ve.Field != tt.field || ve.Value != tt.value {
				t.Errorf("error {code %s field %q value %q}, want {%s %q %q}: %s", ve.Code, ve.Field, ve.Value, code, tt.field, tt.value, ve.Message)
			}
			if tt.value != "" && len(tt.value) < 100 && !strings.Contains(ve.Message, tt.value) {
				t.Errorf("message %q does not name the value %q", ve.Message, tt.value)
			}
			if ve.Message == "" {
				t.Error("no message")
			}
		})
	}
}

func repeat(s string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = s
	}
	return out
}

func TestValidDigest(t *testing.T) {
	tests := []struct {
		name string
		s    string
		want bool
	}{
		{name: "sha256 hex", s: digest, want: true},
		{name: "short", s: digest[:63]},
		{name: "long", s: digest + "0"},
		{name: "capitals", s: strings.ToUpper(digest)},
		{name: "path", s: "../" + digest[3:]},
		{name: "with newline", s: digest + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ValidDigest(tt.s); got != tt.want {
				t.Errorf("ValidDigest(%q) = %t", tt.s, got)
			}
		})
	}
}
