package sandbox

import (
	"io"
	"time"

	"github.com/agentbox/agentbox/internal/units"
	"github.com/agentbox/agentbox/verdict"
)

// Shared types of the sandbox API, the same on every OS (the behaviour is in _linux.go
// files; sandbox_other.go says no elsewhere).

// Payload stands for a guest that already escaped wazero: a test binary registers payloads
// with Init and a spec names one; it runs after the full sandbox setup, in place of wazero,
// and returns the exit code to report. A production binary registers none.
type Payload func(args []string, stdin io.Reader, stdout, stderr io.Writer) int

// InitOption configures Init.
type InitOption func(*initConfig)

type initConfig struct{ payloads map[string]Payload }

// WithPayloads registers native payloads for the security suite (test binaries only).
func WithPayloads(p map[string]Payload) InitOption {
	return func(c *initConfig) { c.payloads = p }
}

// CacheEntry is one module's compiled code in the cache.
type CacheEntry struct {
	Digest   string    `json:"digest"`
	Engine   string    `json:"engine"` // the compiler that made it: wazero-<version>-<arch>-<os>; "" for an entry of an older agentbox
	Bytes    uint64    `json:"bytes"`
	LastUsed time.Time `json:"last_used"`
}

// CheckItem is one thing the host offers or lacks.
type CheckItem struct {
	Name     string `json:"name"`
	OK       bool   `json:"ok"`
	Required bool   `json:"required"` // the sandbox cannot run without it
	// Skipped: not tried, because something it depends on is missing (Detail says what).
	// A skipped item is not OK; its Fix is empty, since the missing dependency is the fix.
	Skipped bool   `json:"skipped,omitempty"`
	Detail  string `json:"detail"`
	Fix     string `json:"fix,omitempty"` // what to do when it is missing
}

// Report is what `agentbox check` prints.
type Report struct {
	Ready bool        `json:"ready"`
	Items []CheckItem `json:"items"`
}

// Verdict is r as the wire verdict that `agentbox run --json` prints and the daemon stores:
// one conversion for both.
func (r Result) Verdict() verdict.Verdict {
	stdout, stderr := string(r.Stdout), string(r.Stderr)
	v := verdict.Verdict{Outcome: r.Outcome, Message: r.Message, Stdout: &stdout, Stderr: &stderr,
		StdoutTruncated: r.StdoutTruncated, StderrTruncated: r.StderrTruncated,
		// A conversion, not a copy field by field: it stops compiling the day the two
		// shapes differ, instead of silently dropping a field from the wire.
		Usage:    verdict.Usage(r.Usage),
		Limits:   r.Limits.Verdict(),
		Warnings: append([]string{}, r.Warnings...)}
	if r.Exited() {
		code := r.ExitCode
		v.ExitCode = &code
	}
	if r.Posture != nil {
		p := *r.Posture
		v.Posture = &p
	}
	return v
}

// Verdict is l in the verdict's form: sizes and durations as the flags take them.
func (l Limits) Verdict() verdict.Limits {
	v := verdict.Limits{Memory: units.FormatSize(l.MemoryBytes), MemoryBytes: l.MemoryBytes, CPUs: l.CPUs, Pids: l.Pids,
		Timeout: l.Timeout.String(), OutputLimit: units.FormatSize(l.OutputBytes), ClockResolution: l.ClockResolution.String()}
	if l.CPUTime > 0 {
		v.CPUTime = l.CPUTime.String()
	}
	return v
}

// PoolStats says how the warm pool (Config.WarmPool) and the hot children
// (Config.HotModules) stand.
type PoolStats struct {
	Size   int   // children the pool keeps
	Ready  int   // children waiting for a task now
	Failed int64 // pooled children that could not be started, since New

	HotSize   int   // digests that may keep a hot child (Config.HotModules)
	HotReady  int   // hot children waiting for a task of their module now
	HotUsed   int64 // tasks that ran in a hot child, since New
	HotFailed int64 // hot children that could not be made ready, since New
}
