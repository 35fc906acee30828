package sandbox

import (
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/agentbox/agentbox/internal/units"
)

// Config is the sandbox's host-side configuration. Zero fields take defaults.
type Config struct {
	// CacheDir holds compiled code per module digest, shared by every agentbox process on
	// the host; "" gives every task a private compile instead. A cache that cannot be used
	// is a warning on each Result, never a failed task.
	CacheDir string
	// CacheMaxBytes bounds the cache; past it the least recently used entries are evicted.
	// Default DefaultCacheMaxBytes.
	CacheMaxBytes uint64
	// Compile is the budget of the sandboxed compile that runs before the first run of a
	// module, separate from the guest's limits.
	Compile CompileLimits
	// MaxModuleBytes refuses larger modules before anything is allocated for them.
	// Default DefaultMaxModuleBytes.
	MaxModuleBytes uint64
	// UIDBase and UIDCount: the host uid (and gid) range mapped to root in task namespaces,
	// one id per concurrent task. Default 1_000_000_000 and 4096: far above ranges that
	// /etc/subuid hands to users. Each id is held host-wide by a lock in SlotLockDir,
	// whatever the range, so supervisors with different ranges never share an id.
	UIDBase  uint32
	UIDCount int
	// ChildBinary, when set, is the static binary every child is re-executed from, in
	// place of the running one: a process whose binary carries much the child never uses
	// (the daemon: nats-server, Prometheus) spawns from the smaller agentbox CLI instead.
	// It must be the same build (Go, wazero and VCS revision), since the two speak the
	// child contract; New refuses another. It is sealed into memory once, as the running
	// binary would be.
	ChildBinary string
	// AllowSpeculation leaves speculative store bypass and indirect branch speculation as
	// the kernel's default policy has them for tasks. By default every task force-disables
	// both for itself where the kernel lets it (Spectre v4 and v2 between tenants of one
	// host); that costs CPU-heavy guests a few percent, more on some code, and a host that
	// runs only its own code may not want to pay it.
	AllowSpeculation bool
	// ExecInPlace executes every child from the binary file itself, opened read-only once,
	// instead of from a sealed copy in memory: it saves the copy (6 ms and 9 MB for
	// agentbox-init) on each New, which a one-shot supervisor (`agentbox run`) pays once per
	// task. New refuses a file that anyone but root may change. It is safe because no task
	// can write the file (docs/SECURITY.md, "The child binary"); a long-lived supervisor (the
	// daemon) keeps the sealed copy, so that an in-place upgrade of the file under it never
	// hands its later tasks another build than the one it checked.
	ExecInPlace bool
	// WarmPool is how many children wait ready for a task, each already in its namespaces,
	// its cgroup and stage one, so that a task skips their start (pool_linux.go). Each
	// takes one task and is discarded with it. 0, the default, starts every task's child
	// when the task comes. A task finding the pool empty starts one, never waits.
	WarmPool int
	// WarmPoolRefill is how many pooled children are started at once to refill it.
	// Default 1 with a pool.
	WarmPoolRefill int
	// HotModules is how many module digests keep a hot child ready (hot_linux.go): a child
	// already past its exec, behind its seccomp filter, with the digest's compiled code
	// loaded from the cache, waiting for a task of that very module. A digest gets one
	// after its second run while there is room, and takes the place of the least run one
	// once it has run twice as often; like a pooled child, each takes one task and is
	// discarded with it. Waiting hot children count against no memory budget. Only tasks that preopen no directory use
	// one, and only with the compile cache. 0, the default, keeps none.
	HotModules int
}

// ChildName is the file name of the dedicated child binary (cmd/agentbox-init) that
// LocateChild looks for beside the running binary.
const ChildName = "agentbox-init"

// CompileLimits bound the sandboxed compile of one module. A module that needs more is
// invalid_module, named with the limit it passed, on a cold and a warm host alike.
type CompileLimits struct {
	Timeout     time.Duration `json:"timeout_ns"`
	MemoryBytes uint64        `json:"memory_bytes"`
	CPUs        float64       `json:"cpus"`
}

// Defaults for Config. The compile budget fits a 10 MB Go module on a 2-core machine under
// software emulation, several times over.
const (
	DefaultCacheDir       = "/var/cache/agentbox"
	DefaultCacheMaxBytes  = 2 << 30
	DefaultMaxModuleBytes = 64 << 20
	DefaultCompileTimeout = 120 * time.Second
	DefaultCompileMemory  = 2 << 30
	DefaultCompileCPUs    = 1.0
	// SlotLockDir holds one lock file per host uid in use by a task. It is fixed, not
	// configurable: two supervisors must see the same locks to never share a uid.
	SlotLockDir = "/run/agentbox/uid-locks"
)

func (c Config) withDefaults() Config {
	if c.CacheMaxBytes == 0 {
		c.CacheMaxBytes = DefaultCacheMaxBytes
	}
	if c.MaxModuleBytes == 0 {
		c.MaxModuleBytes = DefaultMaxModuleBytes
	}
	if c.UIDBase == 0 {
		c.UIDBase = 1_000_000_000
	}
	if c.UIDCount == 0 {
		c.UIDCount = 4096
	}
	c.Compile = c.Compile.withDefaults()
	if c.WarmPool > 0 && c.WarmPoolRefill == 0 {
		c.WarmPoolRefill = 1
	}
	return c
}

// validatePool refuses a warm pool or hot children that cannot work, naming the value.
func (c Config) validatePool() error {
	switch {
	case c.WarmPool < 0 || c.WarmPoolRefill < 0:
		return fmt.Errorf("%w: warm pool %d, refill %d: neither may be negative", ErrBadLimit, c.WarmPool, c.WarmPoolRefill)
	case c.WarmPool >= c.UIDCount:
		return fmt.Errorf("%w: warm pool %d holds a uid per child, and the uid range has %d: keep it smaller", ErrBadLimit, c.WarmPool, c.UIDCount)
	case c.HotModules < 0:
		return fmt.Errorf("%w: hot modules %d may not be negative", ErrBadLimit, c.HotModules)
	case c.WarmPool+c.HotModules >= c.UIDCount:
		return fmt.Errorf("%w: warm pool %d and hot modules %d hold a uid per child, and the uid range has %d: keep them smaller", ErrBadLimit, c.WarmPool, c.HotModules, c.UIDCount)
	case c.WarmPoolRefill > c.WarmPool && c.WarmPool > 0:
		return fmt.Errorf("%w: warm pool refill %d is more than the pool's %d children", ErrBadLimit, c.WarmPoolRefill, c.WarmPool)
	}
	return nil
}

func (l CompileLimits) withDefaults() CompileLimits {
	if l.Timeout == 0 {
		l.Timeout = DefaultCompileTimeout
	}
	if l.MemoryBytes == 0 {
		l.MemoryBytes = DefaultCompileMemory
	}
	if l.CPUs == 0 {
		l.CPUs = DefaultCompileCPUs
	}
	return l
}

// validate refuses a compile budget the sandbox cannot honour, naming the limit.
func (l CompileLimits) validate(hostCPUs int) error {
	switch {
	case l.Timeout < 0:
		return fmt.Errorf("%w: compile timeout %s must not be negative", ErrBadLimit, l.Timeout)
	case l.MemoryBytes < minMemory:
		return fmt.Errorf("%w: compile memory %s is below the %s the runtime needs", ErrBadLimit, units.FormatSize(l.MemoryBytes), units.FormatSize(minMemory))
	case l.CPUs < 0.01 || l.CPUs > float64(hostCPUs):
		return fmt.Errorf("%w: compile cpus %g must be between 0.01 and the %d CPUs of this host", ErrBadLimit, l.CPUs, hostCPUs)
	}
	return nil
}

// Request limits: checked by Run before anything is spawned, so that a request too large
// is the caller's error (a usage error), never a sandbox_error after the spawn.
const (
	MaxArgs = 4096 // argv entries, and env entries, each
	// MaxArgEnvBytes bounds argv and env together, as the kernel's ARG_MAX bounds exec; it
	// keeps the spawn spec well under its 1 MiB wire cap even with every byte escaped.
	MaxArgEnvBytes = 128 << 10
	MaxDirs        = 64
)

// validateRequest refuses a spec the sandbox will not start, naming the field and value.
func validateRequest(s Spec, maxModule uint64) error {
	if uint64(len(s.Module)) > maxModule {
		return fmt.Errorf("%w: %w: module is %s, more than the module size limit of %s", ErrBadSpec, ErrTooLarge, units.FormatSize(uint64(len(s.Module))), units.FormatSize(maxModule))
	}
	if len(s.Args) > MaxArgs {
		return fmt.Errorf("%w: %w: %d args, limit %d", ErrBadSpec, ErrTooLarge, len(s.Args), MaxArgs)
	}
	if len(s.Env) > MaxArgs {
		return fmt.Errorf("%w: %w: %d env entries, limit %d", ErrBadSpec, ErrTooLarge, len(s.Env), MaxArgs)
	}
	total := 0
	for _, a := range s.Args {
		total += len(a) + 1
	}
	for _, kv := range s.Env {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
			return fmt.Errorf("%w: env entry %q is not KEY=VALUE", ErrBadSpec, kv)
		}
		total += len(kv) + 1
	}
	if total > MaxArgEnvBytes {
		return fmt.Errorf("%w: %w: args and env take %s, limit %s", ErrBadSpec, ErrTooLarge, units.FormatSize(uint64(total)), units.FormatSize(MaxArgEnvBytes))
	}
	return validateDirs(s.Dirs)
}

// validateDirs refuses preopens the guest could not use as given: too many, a guest path
// that is not absolute and clean, or two at the same guest path.
func validateDirs(dirs []Dir) error {
	if len(dirs) > MaxDirs {
		return fmt.Errorf("%w: %w: %d dirs, limit %d", ErrBadSpec, ErrTooLarge, len(dirs), MaxDirs)
	}
	seen := make(map[string]bool, len(dirs))
	for _, d := range dirs {
		switch {
		case d.HostPath == "":
			return fmt.Errorf("%w: dir for guest path %q has no host path", ErrBadSpec, d.GuestPath)
		case !path.IsAbs(d.GuestPath) || path.Clean(d.GuestPath) != d.GuestPath:
			return fmt.Errorf("%w: dir %s: guest path %q must be absolute and clean, e.g. /data", ErrBadSpec, d.HostPath, d.GuestPath)
		case seen[d.GuestPath]:
			return fmt.Errorf("%w: two dirs at guest path %s", ErrBadSpec, d.GuestPath)
		}
		seen[d.GuestPath] = true
	}
	return nil
}
