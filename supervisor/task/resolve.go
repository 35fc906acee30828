package task

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/agentbox/agentbox/internal/units"
	"github.com/agentbox/agentbox/outcome"
	"github.com/agentbox/agentbox/sandbox"
	"github.com/agentbox/agentbox/verdict"
)

// Resolved is a SubmitRequest checked and with its defaults filled in.
type Resolved struct {
	Limits      sandbox.Limits
	Retry       RetryPolicy // defaults filled in, in the wire form
	BackoffBase time.Duration
	BackoffMax  time.Duration
	Priority    Priority
}

var digestRE = regexp.MustCompile(`^[0-9a-f]{64}$`)

// ValidDigest reports whether s is a sha256 hex digest, the only module name there is.
func ValidDigest(s string) bool { return digestRE.MatchString(s) }

// Resolve checks r field by field, as the CLI checks its flags, and fills in the defaults.
// hostCPUs bounds limits.cpus. Every refusal is a *verdict.Error naming the JSON field.
func Resolve(r SubmitRequest, hostCPUs int) (Resolved, error) {
	var out Resolved
	if !ValidDigest(r.Module) {
		return out, bad("module", r.Module, "module %q: want the sha256 hex digest that POST /v1/modules returned", r.Module)
	}
	var err error
	if out.Limits, err = resolveLimits(r.Limits, hostCPUs); err != nil {
		return out, err
	}
	if out.Retry, out.BackoffBase, out.BackoffMax, err = resolveRetry(r.Retry); err != nil {
		return out, err
	}
	switch r.Priority {
	case "":
		out.Priority = Normal
	case High, Normal, Low:
		out.Priority = r.Priority
	default:
		return out, bad("priority", string(r.Priority), "priority %q: want high, normal or low", r.Priority)
	}
	if err := checkSizes(r); err != nil {
		return out, err
	}
	return out, nil
}

func bad(field, value, format string, args ...any) error {
	return verdict.Errorf(verdict.InvalidArgument, field, value, format, args...)
}

func tooLarge(field, value, format string, args ...any) error {
	return verdict.Errorf(verdict.TooLarge, field, value, format, args...)
}

// resolveLimits applies the CLI's defaults and bounds: zero (absent) is the default, and
// every present value must be usable.
func resolveLimits(l Limits, hostCPUs int) (sandbox.Limits, error) {
	var out sandbox.Limits
	var err error
	if out.MemoryBytes, err = size("limits.memory", l.Memory, sandbox.DefaultMemory); err != nil {
		return out, err
	}
	if out.OutputBytes, err = size("limits.output_limit", l.OutputLimit, sandbox.DefaultOutputLimit); err != nil {
		return out, err
	}
	if out.Timeout, err = duration("limits.timeout", l.Timeout, sandbox.DefaultTimeout); err != nil {
		return out, err
	}
	if out.CPUTime, err = duration("limits.cpu_time", l.CPUTime, 0); err != nil {
		return out, err
	}
	if out.ClockResolution, err = duration("limits.clock_resolution", l.ClockResolution, sandbox.DefaultClockResolution); err != nil {
		return out, err
	}
	out.CPUs, out.Pids = l.CPUs, l.Pids
	if out.CPUs == 0 {
		out.CPUs = sandbox.DefaultCPUs
	}
	if out.Pids == 0 {
		out.Pids = sandbox.DefaultPids
	}
	cpus := strconv.FormatFloat(l.CPUs, 'g', -1, 64)
	switch {
	case out.CPUs < 0.01:
		return out, bad("limits.cpus", cpus, "limits.cpus %s: must be at least 0.01", cpus)
	case out.CPUs > float64(hostCPUs):
		return out, bad("limits.cpus", cpus, "limits.cpus %s: more than the %d CPUs of this host", cpus, hostCPUs)
	case out.Pids < 8:
		return out, bad("limits.pids", strconv.FormatInt(l.Pids, 10), "limits.pids %d: at least 8 (the child's Go runtime needs them)", l.Pids)
	case out.MemoryBytes < 32<<20:
		return out, bad("limits.memory", l.Memory, "limits.memory %s: at least 32Mi (the child's runtime needs about 20Mi before the guest's memory)", l.Memory)
	}
	if out.ClockResolution > 500*time.Millisecond {
		return out, bad("limits.clock_resolution", l.ClockResolution, "limits.clock_resolution %s: at most 500ms", l.ClockResolution)
	}
	return out, nil
}

// size parses a size as the CLI does; "" is def, and "0" is refused (zero means "the
// default" inside the sandbox, which nobody typing 0 means).
func size(field, v string, def uint64) (uint64, error) {
	if v == "" {
		return def, nil
	}
	n, err := units.ParseSize(v)
	if err != nil {
		return 0, bad(field, v, "%s %q: %w", field, v, err)
	}
	if n == 0 {
		return 0, bad(field, v, "%s %q: must be more than 0 (leave it out for the default %s)", field, v, units.FormatSize(def))
	}
	return n, nil
}

// duration parses a Go duration ("30s"); "" is def. A def of 0 means "none", and then 0 is
// allowed; otherwise it must be positive.
func duration(field, v string, def time.Duration) (time.Duration, error) {
	if v == "" {
		return def, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, bad(field, v, "%s %q: want a duration such as 30s or 1m30s", field, v)
	}
	if d < 0 || (d == 0 && def != 0) {
		return 0, bad(field, v, "%s %q: must be more than 0", field, v)
	}
	return d, nil
}

func resolveRetry(p RetryPolicy) (RetryPolicy, time.Duration, time.Duration, error) {
	if p.MaxAttempts == 0 {
		p.MaxAttempts = DefaultMaxAttempts
	}
	if p.MaxAttempts < 1 || p.MaxAttempts > MaxMaxAttempts {
		v := strconv.Itoa(p.MaxAttempts)
		return p, 0, 0, bad("retry.max_attempts", v, "retry.max_attempts %s: between 1 and %d", v, MaxMaxAttempts)
	}
	if len(p.RetryOn) == 0 {
		p.RetryOn = []outcome.Outcome{outcome.SandboxError}
	}
	for i, o := range p.RetryOn {
		if !o.Valid() || o == outcome.OK || o == outcome.Cancelled {
			f := fmt.Sprintf("retry.retry_on[%d]", i)
			return p, 0, 0, bad(f, string(o), "%s %q: want an outcome other than ok and cancelled, one of %v", f, o, outcome.All)
		}
	}
	base, err := duration("retry.backoff_base", p.BackoffBase, DefaultBackoffBase)
	if err != nil {
		return p, 0, 0, err
	}
	max, err := duration("retry.backoff_max", p.BackoffMax, DefaultBackoffMax)
	if err != nil {
		return p, 0, 0, err
	}
	if max < base && p.BackoffMax == "" {
		// Only the base was given: it is the field to fix, not the default it passed.
		return p, 0, 0, bad("retry.backoff_base", p.BackoffBase, "retry.backoff_base %s is above the default retry.backoff_max %s: lower it or set retry.backoff_max", p.BackoffBase, max)
	}
	if max < base {
		return p, 0, 0, bad("retry.backoff_max", p.BackoffMax, "retry.backoff_max %s is below retry.backoff_base %s", p.BackoffMax, base)
	}
	p.BackoffBase, p.BackoffMax = base.String(), max.String()
	return p, base, max, nil
}

// checkSizes bounds everything else a request carries.
func checkSizes(r SubmitRequest) error {
	total := 0
	for _, a := range r.Args {
		total += len(a) + 1
	}
	for i, kv := range r.Env {
		total += len(kv) + 1
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
			f := fmt.Sprintf("env[%d]", i)
			return bad(f, kv, "%s %q: want KEY=VALUE", f, kv)
		}
	}
	switch {
	case len(r.Args)+1 > sandbox.MaxArgs:
		return tooLarge("args", strconv.Itoa(len(r.Args)), "%d args: at most %d", len(r.Args), sandbox.MaxArgs-1)
	case len(r.Env) > sandbox.MaxArgs:
		return tooLarge("env", strconv.Itoa(len(r.Env)), "%d env entries: at most %d", len(r.Env), sandbox.MaxArgs)
	case total > sandbox.MaxArgEnvBytes:
		return tooLarge("args", strconv.Itoa(total), "args and env take %d bytes: at most %d together", total, sandbox.MaxArgEnvBytes)
	case len(r.Stdin) > MaxStdinBytes:
		return tooLarge("stdin", strconv.Itoa(len(r.Stdin)), "stdin is %d bytes: at most %d", len(r.Stdin), MaxStdinBytes)
	case len(r.Labels) > MaxLabels:
		return tooLarge("labels", strconv.Itoa(len(r.Labels)), "%d labels: at most %d", len(r.Labels), MaxLabels)
	case len(r.IdempotencyKey) > MaxIdempotencyKey:
		return tooLarge("idempotency_key", strconv.Itoa(len(r.IdempotencyKey)), "idempotency_key is %d bytes: at most %d", len(r.IdempotencyKey), MaxIdempotencyKey)
	}
	for k, v := range r.Labels {
		if k == "" || len(k) > MaxLabelBytes || len(v) > MaxLabelBytes {
			return bad("labels", k, "label %q=%q: key must be 1 to %d bytes and value at most %d", k, v, MaxLabelBytes, MaxLabelBytes)
		}
	}
	return nil
}
