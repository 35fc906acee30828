package sandbox

import (
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"fmt"
	"os"
	"time"

	"github.com/agentbox/agentbox/cgroups"
	"github.com/agentbox/agentbox/outcome"
	"github.com/agentbox/agentbox/seccomp"
)

// Config is the sandbox's host-side configuration. Zero fields take defaults.
type Config struct {
	// StateDir holds the uid slot locks. Default /run/agentbox.
	StateDir string
	// CacheDir holds compiled code per module digest; "" disables the cache.
	CacheDir string
	// UIDBase and UIDCount: the host uid (and gid) range mapped to root in task namespaces,
	// one id per concurrent task. Default 1_000_000_000 and 4096: far above ranges that
	// /etc/subuid hands to users.
	UIDBase  uint32
	UIDCount int
}

func (c Config) withDefaults() Config {
	if c.StateDir == "" {
		c.StateDir = "/run/agentbox"
	}
	if c.UIDBase == 0 {
		c.UIDBase = 1_000_000_000
	}
	if c.UIDCount == 0 {
		c.UIDCount = 4096
	}
	return c
}

// Sandbox runs tasks, each in its own sandboxed child. It is safe for concurrent use; one
// per process is enough.
type Sandbox struct {
	exe     *os.File // sealed copy of this binary, re-executed as every child
	filter  []byte   // seccomp program, compiled once
	cgroups *cgroups.Manager
	slots   *slots
	cache   *cache // nil when disabled
}

// New prepares the host side: seals the binary, loads the seccomp program, finds our own
// cgroup and sweeps groups a crashed run left behind.
func New(cfg Config) (*Sandbox, error) {
	cfg = cfg.withDefaults()
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("%w: the supervisor must run as root (uid %d) to map task uids and manage cgroups", ErrUnsupported, os.Geteuid())
	}
	if err := checkStatic(); err != nil {
		return nil, err
	}
	s := &Sandbox{filter: seccomp.Filter()}
	var err error
	if s.slots, err = newSlots(cfg.StateDir+"/slots", cfg.UIDBase, cfg.UIDCount); err != nil {
		return nil, err
	}
	if s.cgroups, err = cgroups.NewManager(); err != nil {
		return nil, fmt.Errorf("cgroups: %w", err)
	}
	if _, err := s.cgroups.Sweep(); err != nil {
		return nil, fmt.Errorf("sweep stale cgroups: %w", err)
	}
	if cfg.CacheDir != "" {
		if s.cache, err = openCache(cfg.CacheDir); err != nil {
			return nil, err
		}
	}
	if s.exe, err = sealedSelf(); err != nil {
		return nil, err
	}
	return s, nil
}

// checkStatic refuses a dynamically linked binary: stage two execs from a memfd inside an
// empty root, where no dynamic loader exists (build with CGO_ENABLED=0; the Makefile does).
func checkStatic() error {
	f, err := elf.Open("/proc/self/exe")
	if err != nil {
		return fmt.Errorf("inspect own binary: %w", err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("%w: this binary is dynamically linked; the sandbox child runs in an empty root with no loader: build with CGO_ENABLED=0", ErrUnsupported)
		}
	}
	return nil
}

// Close releases the sandbox's own resources. Tasks still running are not affected.
func (s *Sandbox) Close() error { return s.exe.Close() }

// CgroupMode reports the cgroup hierarchy the sandbox found (for `agentbox check`).
func (s *Sandbox) CgroupMode() string { return s.cgroups.Mode().String() }

// Run runs one task to its verdict. The error is non-nil only for a spec the sandbox
// refuses before starting (bad limits); every failure after that, including our own, is a
// Result with an outcome from the closed set.
func (s *Sandbox) Run(ctx context.Context, spec Spec) (Result, error) {
	lim := spec.Limits.withDefaults()
	if err := lim.validate(); err != nil {
		return Result{}, err
	}
	for _, d := range spec.Dirs {
		if st, err := os.Stat(d.HostPath); err != nil || !st.IsDir() {
			return Result{}, fmt.Errorf("%w: --dir %s is not a readable directory", ErrBadSpec, d.HostPath)
		}
	}
	t := &task{sb: s, spec: spec, limits: lim, began: time.Now()}
	t.deadline = t.began.Add(lim.Timeout)
	return t.run(ctx), nil
}

// run compiles the module into the cache on a first sight of its digest (in a sandboxed
// compile of its own), then runs it.
func (t *task) run(ctx context.Context) Result {
	w := t.wire()
	if t.sb.cache != nil {
		sum := sha256.Sum256(t.spec.Module)
		digest := hex.EncodeToString(sum[:])
		if !t.sb.cache.has(digest) {
			if r, ok := t.fillCache(ctx, digest); !ok {
				return r
			}
		}
		w.CacheDir, w.CacheMode = t.sb.cache.entry(digest), cacheRO
	}
	return t.spawn(ctx, w)
}

// fillCache runs the sandboxed compile that writes the cache entry for digest. ok is false
// when its result is the final verdict (the module is invalid, or the compile failed).
func (t *task) fillCache(ctx context.Context, digest string) (Result, bool) {
	scratch, err := t.sb.cache.scratch(digest)
	if err != nil {
		return t.result(outcome.SandboxError, fmt.Sprintf("compile cache: %v", err)), false
	}
	w := t.wire()
	w.CompileOnly, w.CacheDir, w.CacheMode = true, scratch.path, cacheRW
	t.onSlot = scratch.chown
	r := t.spawn(ctx, w)
	t.onSlot = nil
	if r.Outcome != outcome.OK {
		scratch.discard()
		return r, false
	}
	if err := scratch.commit(); err != nil {
		return t.result(outcome.SandboxError, fmt.Sprintf("compile cache: %v", err)), false
	}
	return r, true
}

// wire builds the spec the child reads.
func (t *task) wire() wireSpec {
	args := t.spec.Args
	if len(args) == 0 {
		args = []string{"main.wasm"}
	}
	return wireSpec{Args: args, Env: t.spec.Env, Dirs: t.spec.Dirs, Limits: t.limits,
		Filter: t.sb.filter, Payload: t.spec.Payload, Unsafe: t.spec.Unsafe}
}

// result is a verdict the supervisor decided on its own.
func (t *task) result(o outcome.Outcome, msg string) Result {
	return Result{Outcome: o, Message: msg, Limits: t.limits,
		Usage: Usage{WallMS: time.Since(t.began).Milliseconds()}}
}
