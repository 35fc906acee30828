package wasm

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// Preopen gives the guest one host directory, visible to it as GuestPath.
type Preopen struct {
	// HostPath is an existing host directory.
	HostPath string
	// GuestPath is where the guest sees it, e.g. "/data".
	GuestPath string
	// ReadOnly refuses every write through this preopen.
	ReadOnly bool
}

// Config says how to run one module. The zero value runs with no args, no env, empty stdin,
// discarded output, no output cap, wazero's 4 GiB memory ceiling and a 1ms clock.
type Config struct {
	// Args is argv; Args[0] is the program name the guest sees.
	Args []string
	// Env is KEY=VALUE pairs; nothing else from the host environment reaches the guest.
	Env []string
	// Stdin is the guest's fd 0; nil means empty.
	Stdin io.Reader
	// Stdout and Stderr receive fd 1 and fd 2; nil discards (the cap still counts).
	Stdout, Stderr io.Writer
	// OutputLimit caps each stream in bytes; 0 means unlimited. Past it the guest is stopped.
	OutputLimit int64
	// MemoryLimit caps linear memory in bytes; 0 means wazero's 4 GiB.
	MemoryLimit uint64
	// ClockResolution quantises the guest's clocks (a timing side-channel defence);
	// 0 means 1ms. At most MaxClockResolution.
	ClockResolution time.Duration
	// Preopens are the only host directories the guest can see.
	Preopens []Preopen
	// CacheDir is wazero's compilation cache directory; "" disables the cache.
	CacheDir string
	// CloseOnContextDone makes wazero check the context at every loop back-edge and call,
	// and cuts a guest's poll_oneoff sleep short when the context ends. It exists for the
	// benchmark that measures its cost and for tests; the sandbox stops guests from
	// outside (cgroup kill), so the default is false.
	CloseOnContextDone bool
	// BeforeGuest, if set, is called once by Run after every piece of the module's code
	// is mapped (Compile compiled it or loaded it from the cache) and before instantiation
	// runs the guest's first instruction (a start section, then _start). An error stops the
	// run as sandbox_error. wazero maps executable memory only in NewRuntime and
	// CompileModule, never while instantiating or running a module, so the sandbox stacks
	// its no-new-exec seccomp filter here.
	BeforeGuest func() error
}

const (
	// DefaultClockResolution is used when Config.ClockResolution is 0.
	DefaultClockResolution = time.Millisecond
	// MaxClockResolution is the coarsest resolution accepted. WASI reports a uint32 of
	// nanoseconds (about 4.29 s), but wazero 1.12 refuses any clock resolution above
	// 817,405,952 ns (it compares against time.Hour converted to a uint32, which wraps), so
	// we stop at a round 500 ms, well inside both.
	MaxClockResolution = 500 * time.Millisecond
	// MaxMemoryBytes is the wasm32 ceiling: 65536 pages of 64 KiB.
	MaxMemoryBytes = uint64(65536) * pageSize
	// MaxTableEntries caps every table (8 bytes an entry: 32 MiB). Tables without a declared
	// maximum (Go's linker emits one) get this maximum, so table.grow past it returns -1
	// instead of asking the Go heap for gigabytes.
	MaxTableEntries = 1 << 22

	pageSize = 65536
)

// clockResolution returns the effective resolution.
func (c *Config) clockResolution() time.Duration {
	if c.ClockResolution == 0 {
		return DefaultClockResolution
	}
	return c.ClockResolution
}

// memoryLimit returns the effective linear-memory cap in bytes.
func (c *Config) memoryLimit() uint64 {
	if c.MemoryLimit == 0 || c.MemoryLimit > MaxMemoryBytes {
		return MaxMemoryBytes
	}
	return c.MemoryLimit
}

// validate refuses configs that cannot be run as asked, so that a caller bug is reported
// as such and never as a guest outcome.
func (c *Config) validate() error {
	if r := c.ClockResolution; r < 0 || r > MaxClockResolution {
		return fmt.Errorf("%w: clock resolution %v outside [0, %v]", ErrConfig, r, MaxClockResolution)
	}
	if c.OutputLimit < 0 {
		return fmt.Errorf("%w: output limit %d bytes is negative", ErrConfig, c.OutputLimit)
	}
	for _, kv := range c.Env {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
			return fmt.Errorf("%w: env entry %q is not KEY=VALUE", ErrConfig, kv)
		}
	}
	for _, p := range c.Preopens {
		if p.HostPath == "" || p.GuestPath == "" {
			return fmt.Errorf("%w: preopen %+v needs both a host and a guest path", ErrConfig, p)
		}
	}
	return nil
}
