package client

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/agentbox/agentbox/supervisor/task"
)

// maxEventBytes bounds one event (a task record with its args and env, some KiB): a
// stream that sends more without a line break is not agentboxd's.
const maxEventBytes = 4 << 20

// EventStream is an open GET /v1/events. C delivers the tenant's task changes in the
// order the daemon sent them and is closed when the stream ends; Err then says why.
type EventStream struct {
	C   <-chan task.Event
	err error
}

// Err says why C was closed: the cause of ctx's end when the caller ended the stream,
// ErrStreamIdle when the daemon went silent past the heartbeat bound, or what broke the
// stream (the daemon closed it, a malformed event). Read it only after C is closed.
func (s *EventStream) Err() error { return s.err }

// Events opens the event stream (server-sent events). It returns once the daemon has
// answered, so a refusal (a bad token) is the error here; the stream then runs until ctx
// ends or the daemon stops, and is never reopened: a client that wants every change
// reopens it and reads the tasks it cares about with Get, since events sent in between are
// not replayed. Heartbeat comments keep the stream alive; silence longer than the client's
// idle bound (90s) ends it with ErrStreamIdle rather than leaving the caller waiting on a
// dead connection.
func (c *Client) Events(ctx context.Context) (*EventStream, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	r := call{method: http.MethodGet, path: "/v1/events", accept: "text/event-stream"}
	resp, err := c.send(ctx, r)
	if err != nil {
		cancel(err)
		return nil, err
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "text/event-stream" {
		resp.Body.Close()
		cancel(nil)
		return nil, fmt.Errorf("GET /v1/events at %s: answered %q, not text/event-stream", c.host, resp.Header.Get("Content-Type"))
	}
	ch := make(chan task.Event)
	s := &EventStream{C: ch}
	go func() {
		defer close(ch)
		defer cancel(nil)
		defer resp.Body.Close()
		s.err = c.stream(ctx, cancel, resp.Body, ch)
	}()
	return s, nil
}

// stream reads events from body into ch until the stream ends, and says why it ended.
func (c *Client) stream(ctx context.Context, cancel context.CancelCauseFunc, body io.Reader, ch chan<- task.Event) error {
	idle := time.AfterFunc(c.idle, func() {
		cancel(fmt.Errorf("%w: nothing from agentboxd at %s for %s", ErrStreamIdle, c.host, c.idle))
	})
	defer idle.Stop()
	err := readSSE(body, func() { idle.Reset(c.idle) }, func(e sseEvent) error {
		return c.deliver(ctx, e, ch)
	})
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	if err == nil {
		return fmt.Errorf("agentboxd at %s closed the event stream", c.host)
	}
	return fmt.Errorf("event stream from %s: %w", c.host, err)
}

// deliver decodes a task event and sends it on ch; events of other types are skipped,
// so that a newer daemon may add some.
func (c *Client) deliver(ctx context.Context, e sseEvent, ch chan<- task.Event) error {
	if e.name != "task" && e.name != "" {
		return nil
	}
	var ev task.Event
	if err := json.Unmarshal([]byte(e.data), &ev); err != nil {
		return fmt.Errorf("decode a task event: %w (data %.200q)", err, e.data)
	}
	select {
	case ch <- ev:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// sseEvent is one dispatched server-sent event.
type sseEvent struct{ name, data string }

// readSSE parses the server-sent events format (WHATWG HTML, "Server-sent events"):
// "field: value" lines, where several data lines join with newlines and a blank line
// dispatches the event; lines starting with ':' are comments (our heartbeats); lines end
// in LF or CRLF. It calls seen for every line, heartbeats included, and emit for every
// event; it returns emit's first error, a read error, or nil at the end of the stream (an
// event cut off by the end is dropped, as the format says).
func readSSE(r io.Reader, seen func(), emit func(sseEvent) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxEventBytes)
	var ev sseEvent
	var data []string
	for sc.Scan() {
		seen()
		line := sc.Text()
		if line == "" {
			if data != nil {
				ev.data = strings.Join(data, "\n")
				if err := emit(ev); err != nil {
					return err
				}
			}
			ev, data = sseEvent{}, nil
			continue
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "event":
			ev.name = value
		case "data":
			data = append(data, value)
		}
		// "" is a comment; id and retry are not used: the stream is never resumed.
	}
	return sc.Err()
}
