//go:build !linux

package sandbox

import (
	"context"
	"fmt"
	"io"
	"runtime"
)

// Payload stands for a guest that already escaped wazero (test binaries only).
type Payload func(args []string, stdin io.Reader, stdout, stderr io.Writer) int

// InitOption configures Init.
type InitOption func()

// WithPayloads registers native payloads; a no-op off Linux.
func WithPayloads(map[string]Payload) InitOption { return func() {} }

// Init returns at once: there is no sandbox child off Linux.
func Init(...InitOption) {}

// Config is the sandbox's host-side configuration.
type Config struct {
	StateDir, CacheDir string
	UIDBase            uint32
	UIDCount           int
}

// Sandbox is unavailable off Linux.
type Sandbox struct{}

// New fails: the sandbox needs Linux namespaces, cgroups and seccomp.
func New(Config) (*Sandbox, error) {
	return nil, fmt.Errorf("%w: %s (agentbox needs Linux)", ErrUnsupported, runtime.GOOS)
}

// Close does nothing.
func (*Sandbox) Close() error { return nil }

// Run fails.
func (*Sandbox) Run(context.Context, Spec) (Result, error) { return Result{}, ErrUnsupported }

// CheckItem is one thing the host offers or lacks.
type CheckItem struct {
	Name, Detail, Fix string
	OK, Required      bool
}

// Report is what `agentbox check` prints.
type Report struct {
	Ready bool
	Items []CheckItem
}

// Check reports that this OS cannot run the sandbox.
func Check() Report {
	return Report{Items: []CheckItem{{Name: "os", Required: true, Detail: runtime.GOOS + " is not Linux", Fix: "run agentbox on Linux"}}}
}
