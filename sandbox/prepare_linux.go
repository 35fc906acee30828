package sandbox

import (
	"context"
	"fmt"
	"time"

	"github.com/agentbox/agentbox/internal/testhook"
	"github.com/agentbox/agentbox/outcome"
)

// Prepare validates and compiles module in a sandboxed compile child, under the compile
// budget, without running it: the daemon checks an upload this way, never in its own
// process. The compiled code lands in the cache (when there is one), so the module's first
// run starts warm. The Result is ok, invalid_module with the reason, or sandbox_error.
func (s *Sandbox) Prepare(ctx context.Context, module []byte) (Result, error) {
	if uint64(len(module)) > s.cfg.MaxModuleBytes {
		return Result{}, fmt.Errorf("%w: module is %d bytes, more than the %d allowed", ErrTooLarge, len(module), s.cfg.MaxModuleBytes)
	}
	lim := Limits{}.withDefaults()
	t := &task{sb: s, spec: Spec{Module: module}, limits: lim, hooks: testhook.From(ctx), began: time.Now()}
	code, res, ok := t.compiled(ctx)
	if !ok {
		res.Warnings = append(res.Warnings, t.warnings...)
		return res, nil
	}
	code.release()
	return Result{Outcome: outcome.OK, Message: "module compiled", Limits: lim,
		Usage: Usage{CompileMS: t.compileMS}, Warnings: t.warnings}, nil
}
