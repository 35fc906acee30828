package wasm

import (
	"errors"

	"github.com/agentbox/agentbox/outcome"
)

// Sentinel errors. Callers check them with errors.Is on (*Error).Err or on a Result's cause.
var (
	// ErrNoStart: the module exports no _start function of type () -> (), so there is
	// nothing to run (a WASI "reactor", or not a WASI command at all).
	ErrNoStart = errors.New("module exports no _start function of type () -> ()")
	// ErrUnknownImport: the module imports something the host does not provide. Only
	// wasi_snapshot_preview1 functions are provided.
	ErrUnknownImport = errors.New("module imports something the host does not provide")
	// ErrTableTooLarge: a table's declared minimum is over MaxTableEntries.
	ErrTableTooLarge = errors.New("table minimum over the entry limit")
	// ErrModuleSections: the section layout could not be read while vetting the module
	// (limiting tables, checking counts).
	ErrModuleSections = errors.New("module sections could not be read")
	// ErrVectorCount: a section declares more entries (or bytes) than the bytes after the
	// count could hold. wazero would allocate them all before noticing.
	ErrVectorCount = errors.New("vector count over the bytes that follow it")
	// ErrOutputLimit: the guest wrote more than Config.OutputLimit bytes to one stream.
	ErrOutputLimit = errors.New("output limit exceeded")
	// ErrMemoryLimit: the linear-memory cap refused an allocation the guest needed.
	ErrMemoryLimit = errors.New("linear memory limit exceeded")
	// ErrReserve: the address space for the guest's linear memory could not be reserved.
	ErrReserve = errors.New("linear memory reservation failed")
	// ErrConfig: the Config itself is unusable (a caller bug, reported as sandbox_error).
	ErrConfig = errors.New("invalid wasm config")
	// ErrPreopen: a preopened host directory could not be used.
	ErrPreopen = errors.New("preopen unusable")
	// ErrAlreadyRan: a Program runs once; a second Run is refused.
	ErrAlreadyRan = errors.New("program already ran")
	// ErrClosed: the Program was closed before Run.
	ErrClosed = errors.New("program is closed")
)

// Error is how Compile reports failure: the outcome the failure stands for, a human
// sentence, and the cause for errors.Is / errors.As.
type Error struct {
	Outcome outcome.Outcome
	Message string
	Err     error
}

// Error returns the human sentence, which already names the cause.
func (e *Error) Error() string { return e.Message }

// Unwrap exposes the cause.
func (e *Error) Unwrap() error { return e.Err }

// newError builds an *Error; message should already contain the cause's text.
func newError(o outcome.Outcome, err error, message string) *Error {
	return &Error{Outcome: o, Message: message, Err: err}
}
