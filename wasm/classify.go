package wasm

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"

	"github.com/tetratelabs/wazero/sys"

	"github.com/agentbox/agentbox/outcome"
)

// verdict is an outcome with its sentence and exit code, before usage is attached.
type verdict struct {
	outcome  outcome.Outcome
	exitCode uint32
	message  string
}

// classifier turns the error of a guest call into a verdict. It needs the memory cap (was a
// grow refused?) and the context (was the guest stopped by it?).
type classifier struct {
	mem                *memoryCap
	ctx                context.Context
	closeOnContextDone bool
}

// classify decides how the guest ended. Order matters: our own stop signals (output cap,
// context) first, then the guest's exit, then traps, a panic the guest provoked in a host
// function counting as one; a trap or non-zero exit after a refused grow is memory_limit,
// since that is the likeliest cause of the failure. Anything else, a Go panic outside a
// host function included, is ours: sandbox_error.
func (c classifier) classify(err error) verdict {
	if err == nil {
		return verdict{outcome: outcome.OK, message: "guest returned from _start"}
	}
	if v, ok := outputVerdict(err); ok {
		return v
	}
	var exit *sys.ExitError
	if errors.As(err, &exit) {
		return c.exitVerdict(exit)
	}
	if hp := (*hostPanic)(nil); errors.As(err, &hp) {
		return c.abnormal(verdict{outcome: outcome.Trap,
			message: "guest made host function " + hp.function + " panic: " + hp.reason()})
	}
	if text, ok := trapText(err); ok {
		return c.abnormal(verdict{outcome: outcome.Trap, message: "guest trapped: " + text})
	}
	return verdict{outcome: outcome.SandboxError, message: "running the guest failed: " + firstLine(err)}
}

// outputVerdict recognises the cappedWriter's panic, wrapped by wazero.
func outputVerdict(err error) (verdict, bool) {
	var lim *outputLimitError
	if !errors.As(err, &lim) {
		return verdict{}, false
	}
	return verdict{outcome: outcome.OutputLimit, message: lim.Error()}, true
}

// exitVerdict classifies proc_exit and wazero's close-on-context-done exits. The guest can
// call proc_exit with wazero's special codes itself, so those count as the context only if
// the context really is done and we asked wazero to watch it.
func (c classifier) exitVerdict(exit *sys.ExitError) verdict {
	code := exit.ExitCode()
	if c.closeOnContextDone && c.ctx.Err() != nil &&
		(code == sys.ExitCodeDeadlineExceeded || code == sys.ExitCodeContextCanceled) {
		return contextVerdict(c.ctx)
	}
	if code == 0 {
		return verdict{outcome: outcome.OK, message: "guest called proc_exit(0)"}
	}
	return c.abnormal(verdict{outcome: outcome.Exit, exitCode: code, message: fmt.Sprintf("guest called proc_exit(%d)", code)})
}

// abnormal turns an abnormal end into memory_limit if the cap refused a grow first, or into
// sandbox_error if the memory could never be reserved (every grow failed for our reason).
func (c classifier) abnormal(v verdict) verdict {
	if err := c.mem.reservationError(); err != nil {
		return verdict{outcome: outcome.SandboxError, message: err.Error() + " (then " + v.message + ")"}
	}
	if refused, ok := c.mem.refusal(); ok {
		return verdict{outcome: outcome.MemoryLimit, exitCode: v.exitCode,
			message: refused + " (then " + v.message + ")"}
	}
	return v
}

// contextVerdict says why the context ended the guest.
func contextVerdict(ctx context.Context) verdict {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return verdict{outcome: outcome.Timeout, message: "guest stopped: wall-clock deadline passed"}
	}
	return verdict{outcome: outcome.Cancelled, message: "guest stopped: task cancelled"}
}

// trapPkg and trapType name wazero's trap error type. It lives in an internal package, so
// it cannot be named in Go; matching the type's identity is still a typed check, not a
// guess from message text. TestClassifyModules fails if wazero ever moves it.
const (
	trapPkg  = "github.com/tetratelabs/wazero/internal/wasmruntime"
	trapType = "Error"
)

// trapText finds wazero's trap error in err's chain and returns its text
// ("unreachable", "out of bounds memory access", ...).
func trapText(err error) (string, bool) {
	for e := err; e != nil; e = errors.Unwrap(e) {
		t := reflect.TypeOf(e)
		if t.Kind() == reflect.Pointer && t.Elem().PkgPath() == trapPkg && t.Elem().Name() == trapType {
			return e.Error(), true
		}
	}
	return "", false
}

// firstLine keeps an error's first line: wazero appends multi-line stack traces.
func firstLine(err error) string {
	s, _, _ := strings.Cut(err.Error(), "\n")
	return s
}
