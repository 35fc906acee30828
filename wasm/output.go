package wasm

import (
	"fmt"
	"io"
	"sync"
)

// outputLimitError is the panic value a cappedWriter throws when the guest writes past the
// cap. wazero recovers panics from host functions and returns them wrapped with %w from the
// guest call, so the guest cannot ignore the limit (an error return from Write would only
// become an errno the guest is free to disregard).
type outputLimitError struct {
	stream string
	limit  int64
}

func (e *outputLimitError) Error() string {
	return fmt.Sprintf("guest wrote more than %d bytes to %s: output limit %d bytes", e.limit, e.stream, e.limit)
}

// Unwrap makes errors.Is(err, ErrOutputLimit) hold.
func (e *outputLimitError) Unwrap() error { return ErrOutputLimit }

// cappedWriter counts the bytes of one stream and delivers at most limit of them.
type cappedWriter struct {
	w      io.Writer
	stream string
	limit  int64 // 0 = unlimited

	mu        sync.Mutex
	written   int64
	truncated bool
}

// newCappedWriter wraps w (nil = discard) for the named stream.
func newCappedWriter(w io.Writer, stream string, limit int64) *cappedWriter {
	if w == nil {
		w = io.Discard
	}
	return &cappedWriter{w: w, stream: stream, limit: limit}
}

// Write delivers p, or the part of p that fits, then panics with *outputLimitError.
func (c *cappedWriter) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.limit == 0 || int64(len(p)) <= c.limit-c.written {
		n, err := c.w.Write(p)
		c.written += int64(n)
		return n, err
	}
	room := c.limit - c.written
	n, _ := c.w.Write(p[:room])
	c.written += int64(n)
	c.truncated = true
	panic(&outputLimitError{stream: c.stream, limit: c.limit})
}

// wasTruncated reports whether the guest tried to write past the cap.
func (c *cappedWriter) wasTruncated() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.truncated
}
