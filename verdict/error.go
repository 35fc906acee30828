package verdict

import "fmt"

// Code is the class of a refused request: one closed set, so that a script or an API
// client can branch on it. Every code is the caller's or the host's to fix; retrying the
// same request on the same host gives the same error (our own faults during a run are a
// Verdict with outcome sandbox_error, never an Error).
type Code string

const (
	// InvalidArgument: a flag or field has a value that cannot be used (a bad size, an
	// unknown flag, a module that is not a regular file). HTTP 400.
	InvalidArgument Code = "invalid_argument"
	// TooLarge: the request passes a size bound (module size, argument count or bytes).
	// HTTP 413.
	TooLarge Code = "too_large"
	// Unsupported: this host cannot run the sandbox (not root, no CAP_SYS_ADMIN, no
	// cgroups); `agentbox check` says what is missing. HTTP 503.
	Unsupported Code = "unsupported"
	// SetupFailed: preparing the sandbox on a supported host failed (a directory we need is
	// unusable, say). HTTP 500.
	SetupFailed Code = "setup_failed"
	// The daemon's API adds three that the one-shot CLI never meets.
	// NotFound: no such task or module for this tenant (another tenant's is not found
	// either: its existence is not told). HTTP 404.
	NotFound Code = "not_found"
	// Unauthenticated: a missing or wrong token. HTTP 401, and nothing else is said.
	Unauthenticated Code = "unauthenticated"
	// QueueFull: the tenant's or the host's queue bound is reached; retry after the
	// Retry-After the response carries. HTTP 429.
	QueueFull Code = "queue_full"
)

// Codes lists every Code (for docs and table tests).
var Codes = []Code{InvalidArgument, TooLarge, Unsupported, SetupFailed, NotFound, Unauthenticated, QueueFull}

// HTTPStatus is the status the API answers a Code with.
func (c Code) HTTPStatus() int {
	switch c {
	case InvalidArgument:
		return 400
	case Unauthenticated:
		return 401
	case NotFound:
		return 404
	case TooLarge:
		return 413
	case QueueFull:
		return 429
	case Unsupported:
		return 503
	}
	return 500
}

// Error is a request refused before it ran: what is wrong (Message, a sentence that says
// what to do), in which field, with which value. It is printed inside an ErrorBody.
type Error struct {
	Code    Code   `json:"code"`
	Message string `json:"message"`
	// Field names what was refused as the caller wrote it: a flag ("--memory"), "MODULE"
	// or "ARGS" on the command line; a JSON path in the API.
	Field string `json:"field,omitempty"`
	Value string `json:"value,omitempty"`
	cause error
}

// Errorf makes an Error whose message is formatted; a %w verb in format is kept as the
// cause, so errors.Is sees through the Error to it.
func Errorf(code Code, field, value, format string, args ...any) *Error {
	err := fmt.Errorf(format, args...)
	return &Error{Code: code, Field: field, Value: value, Message: err.Error(), cause: err}
}

// Error returns the message.
func (e *Error) Error() string { return e.Message }

// Unwrap returns the cause, so that errors.Is and errors.As see what was wrapped with %w.
func (e *Error) Unwrap() error { return e.cause }

// ErrorBody is the wire form of an Error: {"error": {...}}, so that a client tells an error
// from a verdict by the one key.
type ErrorBody struct {
	Error *Error `json:"error"`
}
