package wasm

import (
	"context"
	"fmt"
	"strings"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
	"github.com/tetratelabs/wazero/sys"
)

// A guest can make wazero's own WASI code panic: poll_oneoff sizes its buffers with
// nsubscriptions*48 in uint32, so 2^28+1 subscriptions wrap to one and the loop indexes
// past it. wazero recovers panics in host calls, but the error it returns names only the
// guest's frames, and a runtime.Error from a host function looks exactly like a bug of
// ours. So every WASI function is re-exported through guardHost, which re-raises such a
// panic as a *hostPanic naming the function: classify reports it as the guest's trap.
// (FuzzWASICalls found one more: fd_filestat_set_times on a stdio fd dereferences the
// nil file system of stdio.) Arguments that would make wazero allocate gigabytes, which
// no recover can catch, are refused before the call by argumentLimits.

// hostPanic is a panic raised inside the named host function.
type hostPanic struct {
	function string // e.g. "wasi_snapshot_preview1.poll_oneoff"
	value    any
}

func (e *hostPanic) Error() string {
	return fmt.Sprintf("host function %s panicked: %v", e.function, e.value)
}

// Unwrap exposes the panic value if it is an error.
func (e *hostPanic) Unwrap() error {
	err, _ := e.value.(error)
	return err
}

// reason is the first line of the panic value.
func (e *hostPanic) reason() string {
	s, _, _ := strings.Cut(fmt.Sprint(e.value), "\n")
	return s
}

// instantiateGuardedWASI instantiates wasi_snapshot_preview1 with every function wrapped
// by guardHost. wazero's WASI functions are read from a compiled, never instantiated,
// copy of its module; their signatures and parameter names are kept as they are.
func instantiateGuardedWASI(ctx context.Context, r wazero.Runtime) error {
	stock, err := wasi_snapshot_preview1.NewBuilder(r).Compile(ctx)
	if err != nil {
		return fmt.Errorf("compiling WASI: %w", err)
	}
	defer stock.Close(ctx)
	b := r.NewHostModuleBuilder(wasi_snapshot_preview1.ModuleName)
	for name, def := range stock.ExportedFunctions() {
		if err := exportGuarded(b, name, def); err != nil {
			return err
		}
	}
	if _, err := b.Instantiate(ctx); err != nil {
		return fmt.Errorf("instantiating WASI: %w", err)
	}
	return nil
}

// exportGuarded exports def's Go implementation under name, behind argumentLimits and
// guardHost.
func exportGuarded(b wazero.HostModuleBuilder, name string, def api.FunctionDefinition) error {
	var fn api.GoModuleFunction
	switch f := def.GoFunction().(type) {
	case api.GoModuleFunction:
		fn = f
	case api.GoFunction:
		fn = api.GoModuleFunc(func(ctx context.Context, _ api.Module, stack []uint64) { f.Call(ctx, stack) })
	default:
		return fmt.Errorf("WASI function %s has no Go implementation (%T)", def.DebugName(), f)
	}
	b.NewFunctionBuilder().
		WithGoModuleFunction(guarded(def.DebugName(), argumentLimits[name], fn), def.ParamTypes(), def.ResultTypes()).
		WithParameterNames(def.ParamNames()...).
		WithResultNames(def.ResultNames()...).
		Export(name)
	return nil
}

// guarded wraps fn: refuse (if not nil) may answer the call with an errno instead, and a
// panic inside fn is named by guardHost.
func guarded(debugName string, refuse argumentLimit, fn api.GoModuleFunction) api.GoModuleFunc {
	return func(ctx context.Context, mod api.Module, stack []uint64) {
		if refuse != nil {
			if errno, refused := refuse(stack); refused {
				stack[0] = errno
				return
			}
		}
		defer guardHost(debugName)
		fn.Call(ctx, mod, stack)
	}
}

// argumentLimit looks at a host call's parameters and may refuse it with an errno.
type argumentLimit func(params []uint64) (errno uint64, refused bool)

// argumentLimits refuse, before wazero sees them, arguments that wazero's WASI code would
// allocate by. guardHost turns a panic into a trap, but an allocation of gigabytes cannot
// be caught: it takes the whole process down, or its cgroup.
var argumentLimits = map[string]argumentLimit{
	"fd_renumber": limitRenumber,
}

const (
	// maxRenumberTarget is the highest fd that fd_renumber may move a file to. wazero's fd
	// table is a slice indexed by fd, grown to fit the target: fd_renumber(fd, 2^31-1) on
	// a file the guest opened asks the Go heap for 16 GiB. 65535 costs at most 512 KiB;
	// WASI itself only means fd_renumber to replace an fd that is already open.
	maxRenumberTarget = 1<<16 - 1
	// errnoBadf is WASI's EBADF, what wazero answers for a negative target.
	errnoBadf = 8
)

// limitRenumber refuses an fd_renumber(fd, to) whose target is over maxRenumberTarget.
func limitRenumber(params []uint64) (uint64, bool) {
	if to := uint32(params[1]); to > maxRenumberTarget {
		return errnoBadf, true
	}
	return 0, false
}

// guardHost, deferred in a host function, re-raises a panic as a *hostPanic naming the
// function. Deliberate panics pass through untouched: proc_exit's *sys.ExitError (wazero
// returns it as is only if it is the panic value itself) and our output cap's
// *outputLimitError.
func guardHost(function string) {
	r := recover()
	switch r.(type) {
	case nil:
		return
	case *sys.ExitError, *outputLimitError:
		panic(r)
	}
	panic(&hostPanic{function: function, value: r})
}
