package wasm

import (
	"context"
	"crypto/rand"
	"fmt"
	"strings"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"

	"github.com/agentbox/agentbox/outcome"
)

// streams are the guest's capped stdout and stderr.
type streams struct {
	stdout, stderr *cappedWriter
}

// Run instantiates the program and calls _start, once. It never returns an error: every
// end, ours included, is a Result. The guest's memory is held until Close.
func (p *Program) Run(ctx context.Context) Result {
	p.running.Lock()
	defer p.running.Unlock()
	if err := p.claim(); err != nil {
		return Result{Outcome: outcome.SandboxError, Message: err.Error()}
	}
	out := streams{
		stdout: newCappedWriter(p.cfg.Stdout, "stdout", p.cfg.OutputLimit),
		stderr: newCappedWriter(p.cfg.Stderr, "stderr", p.cfg.OutputLimit),
	}
	v := p.run(ctx, out)
	return Result{
		Outcome:         v.outcome,
		ExitCode:        v.exitCode,
		Message:         v.message,
		StdoutTruncated: out.stdout.wasTruncated(),
		StderrTruncated: out.stderr.wasTruncated(),
		PeakMemoryBytes: p.mem.peakBytes(),
	}
}

// claim marks the program as run, refusing a second run or a run after Close.
func (p *Program) claim() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.usable(); err != nil {
		return err
	}
	p.ran = true
	return nil
}

// usable is nil while p can still run, else why not: closed, or run once already. The
// caller holds p.mu.
func (p *Program) usable() error {
	switch {
	case p.closed:
		return ErrClosed
	case p.ran:
		return ErrAlreadyRan
	}
	return nil
}

// run does the work of Run and returns the verdict.
func (p *Program) run(ctx context.Context, out streams) verdict {
	c := classifier{mem: p.mem, ctx: ctx, closeOnContextDone: p.cfg.CloseOnContextDone}
	if ctx.Err() != nil {
		return contextVerdict(ctx)
	}
	mc, err := p.moduleConfig(ctx, out)
	if err != nil {
		return verdict{outcome: outcome.SandboxError, message: err.Error()}
	}
	if p.cfg.BeforeGuest != nil {
		if err := p.cfg.BeforeGuest(); err != nil {
			return verdict{outcome: outcome.SandboxError, message: "before the guest's first instruction: " + err.Error()}
		}
	}
	mod, v, ok := p.instantiate(ctx, mc, c)
	if !ok {
		return v
	}
	defer mod.Close(ctx)
	_, err = mod.ExportedFunction("_start").Call(ctx)
	return c.classify(err)
}

// moduleConfig is the guest's whole world: args, env, stdio, clocks, randomness, preopens.
// _start is called by run, not by wazero, so instantiation and running fail separately.
// With CloseOnContextDone, sleeps end when ctx does.
func (p *Program) moduleConfig(ctx context.Context, out streams) (wazero.ModuleConfig, error) {
	fsc, err := fsConfig(p.cfg.Preopens)
	if err != nil {
		return nil, err
	}
	clk := newClock(p.cfg.clockResolution())
	sleep := nanosleep
	if p.cfg.CloseOnContextDone {
		sleep = sleepUntilDone(ctx)
	}
	mc := wazero.NewModuleConfig().
		WithStartFunctions().
		WithArgs(p.cfg.Args...).
		WithStdout(out.stdout).
		WithStderr(out.stderr).
		WithWalltime(clk.walltime, clk.resolution()).
		WithNanotime(clk.nanotime, clk.resolution()).
		WithNanosleep(sleep).
		WithRandSource(rand.Reader).
		WithFSConfig(fsc)
	if p.cfg.Stdin != nil {
		mc = mc.WithStdin(p.cfg.Stdin)
	}
	for _, kv := range p.cfg.Env {
		k, v, _ := strings.Cut(kv, "=")
		mc = mc.WithEnv(k, v)
	}
	return mc, nil
}

// instantiate links the guest, builds its memory through the cap and runs any wasm start
// section. A trap or exit in a start section is classified like one in _start; other
// failures are the module's (it linked at compile time, so these are data or element
// segments out of range and the like).
func (p *Program) instantiate(ctx context.Context, mc wazero.ModuleConfig, c classifier) (mod api.Module, v verdict, ok bool) {
	defer func() {
		// wazero does not expect the allocator to refuse a module's initial memory and
		// panics if it does. vetModule refuses such modules first; this is the backstop.
		if r := recover(); r != nil {
			mod, ok = nil, false
			v = verdict{outcome: outcome.SandboxError, message: fmt.Sprintf("instantiating the module panicked: %v", r)}
			if err := p.mem.reservationError(); err != nil {
				v.message = err.Error()
			} else if refused, was := p.mem.refusal(); was {
				v = verdict{outcome: outcome.MemoryLimit, message: refused}
			}
		}
	}()
	mod, err := p.runtime.InstantiateModule(experimental.WithMemoryAllocator(ctx, p.mem), p.compiled, mc)
	if err == nil {
		return mod, verdict{}, true
	}
	if v = c.classify(err); v.outcome == outcome.SandboxError {
		v = verdict{outcome: outcome.InvalidModule, message: "invalid module: instantiation failed: " + firstLine(err)}
	}
	return nil, v, false
}
