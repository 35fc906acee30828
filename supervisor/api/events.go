package api

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/agentbox/agentbox/supervisor/task"
)

// heartbeatFrame is an SSE comment: clients ignore it, and it tells them (and any proxy
// between) that an idle stream is alive.
var heartbeatFrame = []byte(": heartbeat\n\n")

// events streams every change of the tenant's tasks as server-sent events until the
// client goes. The subscription is made before the headers are sent, so a client that
// has the headers misses no change made after that.
func (s *Server) events(w http.ResponseWriter, r *http.Request, tenant string) error {
	ctx := r.Context()
	ch := s.b.Subscribe(ctx, tenant)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // nginx would otherwise hold events back
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	defer rc.SetWriteDeadline(time.Time{}) // see holdWriteDeadline
	if err := s.send(w, rc, nil); err != nil {
		return nil // the status is sent: the stream has nothing to say about errors
	}
	s.stream(ctx, w, rc, ch)
	return nil
}

// stream writes events and heartbeats until ctx ends, ch closes or a write fails.
func (s *Server) stream(ctx context.Context, w http.ResponseWriter, rc *http.ResponseController, ch <-chan task.Event) {
	tick := time.NewTicker(s.opts.SSEHeartbeat)
	defer tick.Stop()
	for {
		var frame []byte
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-ch:
			if !ok {
				return
			}
			frame = eventFrame(ev)
		case <-tick.C:
			frame = heartbeatFrame
		}
		if err := s.send(w, rc, frame); err != nil {
			s.log.Debug("event stream ended", "err", err)
			return
		}
	}
}

// eventFrame is ev as one SSE event. Compact JSON has no newline, so it is one data line.
func eventFrame(ev task.Event) []byte {
	ev.Task = wireTask(ev.Task)
	b, err := json.Marshal(ev)
	if err != nil {
		panic("encode task.Event: " + err.Error()) // the wire types always encode
	}
	frame := append([]byte("event: task\ndata: "), b...)
	return append(frame, '\n', '\n')
}

// send writes frame and flushes it to the client at once, under a per-write deadline
// that drops a client which stopped reading.
func (s *Server) send(w http.ResponseWriter, rc *http.ResponseController, frame []byte) error {
	_ = rc.SetWriteDeadline(time.Now().Add(writeSlack))
	if _, err := w.Write(frame); err != nil {
		return err
	}
	return rc.Flush()
}
