package sandbox

import (
	"context"
	"debug/elf"
	"fmt"
	"os"
	"runtime"
	"time"

	"github.com/agentbox/agentbox/cgroups"
	"github.com/agentbox/agentbox/internal/testhook"
	"github.com/agentbox/agentbox/outcome"
	"github.com/agentbox/agentbox/seccomp"
)

// Sandbox runs tasks, each in its own sandboxed child. It is safe for concurrent use; one
// per process is enough.
type Sandbox struct {
	cfg     Config
	exe     *os.File // the child binary, re-executed as every child: a sealed copy, or the file (ExecInPlace)
	filter  []byte   // seccomp program, compiled once
	cgroups *cgroups.Manager
	slots   *slots
	cache   *cache // nil when disabled or unusable
	pool    *pool  // nil without a warm pool
	hot     *hot   // nil without hot children
	// cacheWarning says why the configured cache is not used; every Result carries it.
	cacheWarning string
	swept        int // stale task cgroups New removed
}

// Swept is the number of task cgroups that New found left behind by a dead supervisor
// and removed (the daemon counts them as leaks in its metrics).
func (s *Sandbox) Swept() int { return s.swept }

// New prepares the host side: seals the binary, loads the seccomp program, finds our own
// cgroup and sweeps groups a crashed run left behind. A compile cache that cannot be used
// is not an error: tasks run with a private compile and say so in Result.Warnings.
func New(cfg Config) (*Sandbox, error) {
	cfg = cfg.withDefaults()
	if err := CheckPrivileges(); err != nil {
		return nil, err
	}
	if err := cfg.Compile.validate(runtime.NumCPU()); err != nil {
		return nil, err
	}
	if err := cfg.validatePool(); err != nil {
		return nil, err
	}
	if cfg.ChildBinary == "" {
		if err := checkStatic(); err != nil {
			return nil, err
		}
	}
	s := &Sandbox{cfg: cfg, filter: seccomp.Filter()}
	var err error
	if s.slots, err = newSlots(SlotLockDir, cfg.UIDBase, cfg.UIDCount); err != nil {
		return nil, err
	}
	if s.cgroups, err = cgroups.NewManager(); err != nil {
		return nil, fmt.Errorf("%w: cgroups: %w", ErrUnsupported, err)
	}
	swept, err := s.cgroups.Sweep()
	if err != nil {
		return nil, fmt.Errorf("sweep stale cgroups: %w", err)
	}
	s.swept = len(swept)
	if cfg.CacheDir != "" {
		if s.cache, err = openCache(cfg.CacheDir, cfg.CacheMaxBytes); err != nil {
			s.cacheWarning = fmt.Sprintf("compile cache unusable, running without it: %v", err)
		}
	}
	switch {
	case cfg.ExecInPlace:
		s.exe, err = binaryInPlace(cfg.ChildBinary)
	case cfg.ChildBinary != "":
		s.exe, err = sealedBinary(cfg.ChildBinary)
	default:
		s.exe, err = sealedSelf()
	}
	if err != nil {
		return nil, err
	}
	s.pool = newPool(s, cfg.WarmPool, cfg.WarmPoolRefill)
	s.hot = newHot(s, cfg.HotModules)
	return s, nil
}

// checkStatic refuses a dynamically linked binary: stage two execs from a memfd inside an
// empty root, where no dynamic loader exists (build with CGO_ENABLED=0; the Makefile does).
func checkStatic() error { return checkStaticFile("/proc/self/exe") }

func checkStaticFile(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("inspect binary %s: %w", path, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("%w: %s is dynamically linked; the sandbox child runs in an empty root with no loader: build with CGO_ENABLED=0", ErrUnsupported, path)
		}
	}
	return nil
}

// Close releases the sandbox's own resources and undoes what it did to the cgroup tree as
// far as nothing else needs it (cgroups.Manager.Close). The warm pool's children and the
// hot children are discarded; tasks still running are not affected.
func (s *Sandbox) Close() error {
	s.pool.close()
	s.hot.close()
	err := s.exe.Close()
	if cerr := s.cgroups.Close(); err == nil {
		err = cerr
	}
	return err
}

// CgroupMode reports the cgroup hierarchy the sandbox found (for `agentbox check`).
func (s *Sandbox) CgroupMode() string { return s.cgroups.Mode().String() }

// CacheWarning says why the configured compile cache is not in use; "" when it is.
func (s *Sandbox) CacheWarning() string { return s.cacheWarning }

// Run runs one task to its verdict. The error is non-nil only for a spec the sandbox
// refuses before starting (bad limits, a request too large: the caller's to fix); every
// failure after that, including our own, is a Result with an outcome from the closed set.
func (s *Sandbox) Run(ctx context.Context, spec Spec) (Result, error) {
	lim := spec.Limits.withDefaults()
	if err := lim.validate(); err != nil {
		return Result{}, err
	}
	if err := validateRequest(spec, s.cfg.MaxModuleBytes); err != nil {
		return Result{}, err
	}
	for _, d := range spec.Dirs {
		if st, err := os.Stat(d.HostPath); err != nil || !st.IsDir() {
			return Result{}, fmt.Errorf("%w: dir %s is not a readable directory", ErrBadSpec, d.HostPath)
		}
	}
	t := &task{sb: s, spec: spec, limits: lim, hooks: testhook.From(ctx), began: time.Now()}
	if _, err := encodeSpec(t.wire()); err != nil {
		return Result{}, err
	}
	if s.cacheWarning != "" {
		t.warnings = append(t.warnings, s.cacheWarning)
	}
	res := t.run(ctx)
	res.Warnings = append(res.Warnings, t.warnings...)
	return res, nil
}

// run gets the module's compiled code (from the cache, or by a sandboxed compile with its
// own budget), then runs it with the guest's limits.
func (t *task) run(ctx context.Context) Result {
	if t.hooks.Hot && len(t.spec.Dirs) == 0 {
		return t.runInNewHot(ctx)
	}
	if t.hooks.Payload != "" && len(t.spec.Module) == 0 {
		// A native payload stands for a guest that escaped: there is no module to compile.
		// With a module, the payload runs where that module's guest would, its compiled
		// code mounted read-only as for the guest (the security suite reads that mount).
		return t.runChild(ctx, t.wire())
	}
	key, hotOK := t.hotKey()
	if hotOK {
		if c := t.sb.hot.take(key); c != nil {
			w := t.wire()
			w.CacheDir, w.CacheMode, w.Hot = t.sb.cache.entry(key.digest), cacheRO, true
			r, ok := t.runHot(ctx, c, w)
			// Its replacement warms once this task is done, not beside it: a warm-up forks
			// the supervisor and takes a child through its start on the same cores, which
			// cost a task beside it a third of its time to the guest's start
			// (BenchmarkWarmPool). The key keeps its place meanwhile, and a task of the
			// module that comes meanwhile finds no hot child and starts the warm-up itself,
			// below.
			t.sb.hot.done(key, t.spec.Module, t.wire())
			if ok {
				return r
			}
			hotOK = false // counted: the run goes on in a child of its own
		}
	}
	code, res, ok := t.compiled(ctx)
	if !ok {
		return res
	}
	defer code.release()
	w := t.wire()
	w.CacheDir, w.CacheMode = code.dir, cacheRO
	if hotOK && code.dir == t.sb.cache.entry(key.digest) {
		t.sb.hot.ran(key, t.spec.Module, w)
	}
	r := t.runChild(ctx, w)
	r.Usage.CompileMS = t.compileMS
	return r
}

// runChild spawns the run itself: its wall clock starts now, after any compile.
func (t *task) runChild(ctx context.Context, w wireSpec) Result {
	t.began = time.Now()
	t.deadline = t.began.Add(t.limits.Timeout)
	return t.spawn(ctx, w, t.limits, false)
}

// compiled returns the module's compiled code, ready to mount read-only. ok is false when
// res is the final verdict (the module is invalid, or the compile failed).
func (t *task) compiled(ctx context.Context) (code *compiledCode, res Result, ok bool) {
	digest := t.digest()
	if c := t.sb.cache; c != nil {
		code, res, ok, err := c.acquire(ctx, digest, t.sb.cfg.Compile.Timeout, t.compileInto)
		if err == nil {
			return code, res, ok
		}
		t.warnings = append(t.warnings, fmt.Sprintf("compile cache %s: %v; compiled privately", c.root, err))
	}
	return t.compilePrivately(ctx)
}

// compilePrivately compiles into a scratch directory of this task's own, removed after
// the run: the same sandboxed compile and budget as a cache fill, shared with nobody.
func (t *task) compilePrivately(ctx context.Context) (*compiledCode, Result, bool) {
	dir, err := os.MkdirTemp("", "agentbox-compile-")
	if err != nil {
		return nil, t.result(outcome.SandboxError, fmt.Sprintf("private compile dir: %v", err)), false
	}
	s := &scratchDir{path: dir}
	if res, ok := t.compileInto(ctx, s); !ok {
		s.discard()
		return nil, res, false
	}
	if err := s.seal(); err != nil {
		s.discard()
		return nil, t.result(outcome.SandboxError, fmt.Sprintf("private compile dir: %v", err)), false
	}
	return &compiledCode{dir: dir, release: s.discard}, Result{}, true
}

// compileInto runs the sandboxed compile that writes the module's compiled code into s,
// under the compile budget. Whatever stops it is the module's: a compile that passes its
// budget is invalid_module, named with the limit, never the guest's memory_limit or timeout.
func (t *task) compileInto(ctx context.Context, s *scratchDir) (Result, bool) {
	b := t.sb.cfg.Compile
	// The compiled code is written to the scratch dir: it is bounded by the compile's memory
	// (the code is in memory first), not by the guest's file-size limit.
	lim := Limits{MemoryBytes: b.MemoryBytes, CPUs: b.CPUs, Pids: DefaultPids, Timeout: b.Timeout,
		OutputBytes: 64 << 10, FileSizeBytes: b.MemoryBytes, ClockResolution: t.limits.ClockResolution}
	// The compile sees the module and its scratch directory, nothing of the task's: no
	// args, env or dirs, and every wall up.
	w := wireSpec{Args: []string{"compile"}, Limits: lim, Filter: t.sb.filter,
		CompileOnly: true, CacheDir: s.path, CacheMode: cacheRW, AllowSpeculation: t.sb.cfg.AllowSpeculation}
	start := time.Now()
	t.deadline = start.Add(b.Timeout)
	t.onSlot = s.chown
	r := t.spawn(ctx, w, lim, true)
	t.onSlot = nil
	t.compileMS = time.Since(start).Milliseconds()
	if r.Outcome == outcome.OK {
		return r, true
	}
	return compileVerdict(r, b, t.limits), false
}

// wire builds the spec the child reads.
func (t *task) wire() wireSpec {
	args := t.spec.Args
	if len(args) == 0 {
		args = []string{"main.wasm"}
	}
	return wireSpec{Args: args, Env: t.spec.Env, Dirs: t.spec.Dirs, Limits: t.limits,
		Filter: t.sb.filter, Payload: t.hooks.Payload, Unsafe: t.hooks.Unsafe, AllowSpeculation: t.sb.cfg.AllowSpeculation}
}

// result is a verdict the supervisor decided on its own.
func (t *task) result(o outcome.Outcome, msg string) Result {
	return Result{Outcome: o, Message: msg, Limits: t.limits,
		Usage: Usage{WallMS: time.Since(t.began).Milliseconds(), CompileMS: t.compileMS}}
}
