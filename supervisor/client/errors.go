package client

import (
	"errors"
	"time"

	"github.com/agentbox/agentbox/verdict"
)

var (
	// ErrBadHost is wrapped by New's refusals of a host address.
	ErrBadHost = errors.New("bad agentboxd host")
	// ErrUnreachable is wrapped when no connection to agentboxd could be made (no socket,
	// connection refused, no permission on the socket): the daemon is not running there,
	// or the address is wrong. A caller tells the user to start it or fix the address.
	ErrUnreachable = errors.New("agentboxd is unreachable")
	// ErrStreamIdle ends an event stream that carried neither an event nor a heartbeat for
	// longer than the client waits: a half-open connection would otherwise hang forever.
	ErrStreamIdle = errors.New("event stream idle")
)

// StatusError is a non-2xx answer. It unwraps to the *verdict.Error the body carried, so
// errors.As(err, &verdictErr) finds the API's error whatever the status; Status and
// RetryAfter are the HTTP details a caller may branch on.
type StatusError struct {
	Status int
	// RetryAfter is the response's Retry-After (429 queue_full); a second for a 429 that
	// had none.
	RetryAfter time.Duration
	Err        *verdict.Error
}

// Error returns the API error's message.
func (e *StatusError) Error() string { return e.Err.Message }

// Unwrap returns the API error.
func (e *StatusError) Unwrap() error { return e.Err }
