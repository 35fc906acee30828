package sandbox

import "errors"

var (
	// ErrBadLimit is wrapped by errors about a limit the sandbox cannot honour.
	ErrBadLimit = errors.New("bad limit")
	// ErrBadSpec is wrapped by errors about a malformed spawn spec (either side of the pipe).
	ErrBadSpec = errors.New("bad spawn spec")
	// ErrTooLarge is wrapped, with ErrBadSpec, by errors about a request over a size limit
	// (module, args, env, dirs): the caller asked for too much, not for something malformed.
	ErrTooLarge = errors.New("request too large")
	// ErrUnsupported is returned where the host cannot run the sandbox at all.
	ErrUnsupported = errors.New("sandbox unsupported on this host")
	// ErrNoSlot is returned when every host uid slot in the configured range is taken.
	ErrNoSlot = errors.New("no free host uid slot")
)
