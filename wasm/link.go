package wasm

import (
	"fmt"
	"slices"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/agentbox/agentbox/outcome"
)

// checkLinks refuses, at compile time, a module that could not link or has nothing to run:
// every import must be a WASI function with the signature WASI gives it, no memory may be
// imported, and _start must exist as () -> (). Finding this here keeps instantiation
// failures rare, and lets the supervisor reject a module before it queues it.
func checkLinks(compiled wazero.CompiledModule, wasi map[string]api.FunctionDefinition) *Error {
	for _, def := range compiled.ImportedFunctions() {
		if err := checkImport(def, wasi); err != nil {
			return newError(outcome.InvalidModule, err, "invalid module: "+err.Error())
		}
	}
	for _, def := range compiled.ImportedMemories() {
		mod, name, _ := def.Import()
		err := fmt.Errorf("%w: memory %s.%s", ErrUnknownImport, mod, name)
		return newError(outcome.InvalidModule, err, "invalid module: "+err.Error())
	}
	start, ok := compiled.ExportedFunctions()["_start"]
	if !ok || len(start.ParamTypes()) != 0 || len(start.ResultTypes()) != 0 {
		return newError(outcome.InvalidModule, ErrNoStart, "invalid module: "+ErrNoStart.Error())
	}
	return nil
}

// checkImport accepts an imported function only if WASI provides it with the same type.
func checkImport(def api.FunctionDefinition, wasi map[string]api.FunctionDefinition) error {
	mod, name, _ := def.Import()
	want, ok := wasi[name]
	if mod != "wasi_snapshot_preview1" || !ok {
		return fmt.Errorf("%w: function %s.%s (only wasi_snapshot_preview1 is provided)", ErrUnknownImport, mod, name)
	}
	if !slices.Equal(def.ParamTypes(), want.ParamTypes()) || !slices.Equal(def.ResultTypes(), want.ResultTypes()) {
		return fmt.Errorf("%w: function %s.%s has type %v -> %v, WASI's is %v -> %v", ErrUnknownImport,
			mod, name, def.ParamTypes(), def.ResultTypes(), want.ParamTypes(), want.ResultTypes())
	}
	return nil
}
