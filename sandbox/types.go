package sandbox

import (
	"io"
	"time"
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
