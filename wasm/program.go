// Package wasm runs one WASI preview 1 module under wazero with limits, and says how the
// guest ended in the closed vocabulary of package outcome. It knows nothing of processes
// or cgroups: the sandbox package calls it inside an already-sandboxed child process, and
// it works unprivileged in plain tests.
package wasm

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/agentbox/agentbox/outcome"
)

// wazeroMemoryLimitPages is wazero's own page limit: the wasm32 ceiling, on purpose. wazero
// refuses a grow past its limit before the allocator sees it, silently; memoryCap enforces
// Config.MemoryLimit itself so that every refusal is seen, recorded and reported.
const wazeroMemoryLimitPages = uint32(MaxMemoryBytes / pageSize)

// Result is how one run ended.
type Result struct {
	// Outcome is the verdict.
	Outcome outcome.Outcome
	// ExitCode is the guest's proc_exit code (0 for ok).
	ExitCode uint32
	// Message says what happened in a sentence, naming the limit and its value if one was hit.
	Message string
	// StdoutTruncated and StderrTruncated say the guest wrote past OutputLimit.
	StdoutTruncated, StderrTruncated bool
	// PeakMemoryBytes is the guest's linear-memory size at the end (it never shrinks).
	PeakMemoryBytes uint64
}

// Program is a compiled, validated module ready to run once. Compile and Run are separate
// so the sandbox can remount the compilation cache read-only between them.
type Program struct {
	cfg      Config
	runtime  wazero.Runtime
	cache    wazero.CompilationCache // nil without CacheDir
	compiled wazero.CompiledModule
	mem      *memoryCap

	running sync.Mutex // held by Run while the guest runs; Close waits for it
	mu      sync.Mutex // guards ran and closed
	ran     bool
	closed  bool
}

// Compile decodes, validates and compiles module for cfg, and links it against WASI. The
// error, if any, is an *Error: invalid_module for the module's faults, memory_limit if its
// initial memory is over the cap, sandbox_error for ours.
func Compile(ctx context.Context, module []byte, cfg Config) (*Program, error) {
	if err := cfg.validate(); err != nil {
		return nil, newError(outcome.SandboxError, err, err.Error())
	}
	vetted, err := vetModule(module, MaxTableEntries, cfg.memoryLimit())
	if err != nil {
		return nil, vetError(err)
	}
	p := &Program{cfg: cfg, mem: newMemoryCap(cfg.memoryLimit())}
	if err := p.build(ctx, vetted); err != nil {
		_ = p.Close(ctx)
		return nil, err
	}
	return p, nil
}

// Prepare replaces, for the one Run to come, what Compile does not use: Args, Env, the
// streams, OutputLimit, ClockResolution and BeforeGuest. A hot sandbox child compiles its
// module before its task is known and learns these at the handoff. The rest of cfg is
// Compile's work and must be what Compile had: Prepare refuses another memory limit,
// preopens, cache or context watch, so that nothing vetted against one config runs under
// another.
func (p *Program) Prepare(cfg Config) error {
	if err := cfg.validate(); err != nil {
		return err
	}
	old := p.cfg
	switch {
	case cfg.memoryLimit() != old.memoryLimit():
		return fmt.Errorf("%w: memory limit %d bytes, compiled for %d", ErrConfig, cfg.memoryLimit(), old.memoryLimit())
	case !slices.Equal(cfg.Preopens, old.Preopens):
		return fmt.Errorf("%w: preopens %v, compiled with %v", ErrConfig, cfg.Preopens, old.Preopens)
	case cfg.CacheDir != old.CacheDir || cfg.CloseOnContextDone != old.CloseOnContextDone:
		return fmt.Errorf("%w: cache %q and context watch %t, compiled with %q and %t", ErrConfig,
			cfg.CacheDir, cfg.CloseOnContextDone, old.CacheDir, old.CloseOnContextDone)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.usable(); err != nil {
		return err
	}
	p.cfg = cfg
	return nil
}

// vetError sorts vetModule's refusals: the memory cap, or a module we will not run.
func vetError(err error) *Error {
	if errors.Is(err, ErrMemoryLimit) {
		return newError(outcome.MemoryLimit, err, strings.TrimPrefix(err.Error(), ErrMemoryLimit.Error()+": "))
	}
	return newError(outcome.InvalidModule, err, "invalid module: "+err.Error())
}

// build makes the runtime, instantiates WASI and compiles the guest, in that order.
func (p *Program) build(ctx context.Context, module []byte) *Error {
	if err := p.newRuntime(ctx); err != nil {
		return err
	}
	wasi, err := p.instantiateWASI(ctx)
	if err != nil {
		return err
	}
	if p.compiled, err = p.compile(ctx, module); err != nil {
		return err
	}
	return checkLinks(p.compiled, wasi)
}

// newRuntime configures wazero as the issue asks: compiler engine, wasm 2.0 without
// threads, the memory allocator sees every grow, and the context is watched only on request.
func (p *Program) newRuntime(ctx context.Context) *Error {
	rc := wazero.NewRuntimeConfigCompiler().
		WithCoreFeatures(api.CoreFeaturesV2).
		WithMemoryLimitPages(wazeroMemoryLimitPages).
		WithMemoryCapacityFromMax(true).
		WithCloseOnContextDone(p.cfg.CloseOnContextDone)
	if p.cfg.CacheDir != "" {
		cache, err := wazero.NewCompilationCacheWithDir(p.cfg.CacheDir)
		if err != nil {
			err = fmt.Errorf("compilation cache %s: %w", p.cfg.CacheDir, err)
			return newError(outcome.SandboxError, err, err.Error())
		}
		p.cache = cache
		rc = rc.WithCompilationCache(cache)
	}
	p.runtime = wazero.NewRuntimeWithConfig(ctx, rc)
	return nil
}

// instantiateWASI provides wasi_snapshot_preview1, each function guarded so that a panic
// the guest provokes in it is named (host.go), and returns its function signatures.
func (p *Program) instantiateWASI(ctx context.Context) (map[string]api.FunctionDefinition, *Error) {
	if err := instantiateGuardedWASI(ctx, p.runtime); err != nil {
		return nil, newError(outcome.SandboxError, err, err.Error())
	}
	return p.runtime.Module(wasi_snapshot_preview1.ModuleName).ExportedFunctionDefinitions(), nil
}

// compile runs wazero's decoder, validator and compiler. wazero returns the compilation
// cache's I/O errors (a full disk, a read-only cache) from the same call, unwrapped from
// the os package: those are ours, not the module's. Decode, validate and compile errors
// are plain errors.
func (p *Program) compile(ctx context.Context, module []byte) (wazero.CompiledModule, *Error) {
	compiled, err := p.runtime.CompileModule(ctx, module)
	if err != nil {
		if isIOError(err) {
			return nil, newError(outcome.SandboxError, err, "compilation cache: "+firstLine(err))
		}
		return nil, newError(outcome.InvalidModule, err, "invalid module: "+firstLine(err))
	}
	return compiled, nil
}

// isIOError reports whether err came from the file system rather than from the module.
func isIOError(err error) bool {
	var pathErr *fs.PathError
	var linkErr *os.LinkError
	var errno syscall.Errno
	return errors.As(err, &pathErr) || errors.As(err, &linkErr) || errors.As(err, &errno)
}

// Close releases the runtime, the compiled code, the cache handle and the guest's memory.
// It waits for a Run in progress to return, because the memory cannot be unmapped under a
// running guest. It is safe to call more than once.
func (p *Program) Close(ctx context.Context) error {
	p.running.Lock()
	defer p.running.Unlock()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	p.closed = true
	var errs []error
	if p.runtime != nil {
		errs = append(errs, p.runtime.Close(ctx))
	}
	if p.cache != nil {
		errs = append(errs, p.cache.Close(ctx))
	}
	errs = append(errs, p.mem.release())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("closing program: %w", err)
	}
	return nil
}

// Run compiles, runs and closes module: the one-call form. Compile failures become Results.
func Run(ctx context.Context, module []byte, cfg Config) Result {
	p, err := Compile(ctx, module, cfg)
	if err != nil {
		var e *Error
		if errors.As(err, &e) {
			return Result{Outcome: e.Outcome, Message: e.Message}
		}
		return Result{Outcome: outcome.SandboxError, Message: err.Error()}
	}
	defer p.Close(ctx)
	return p.Run(ctx)
}
