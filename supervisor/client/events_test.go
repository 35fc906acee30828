package client

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/agentbox/agentbox/supervisor/task"
)

func TestClientReadSSE(t *testing.T) {
	tests := []struct {
		name, in string
		want     []sseEvent
	}{
		{name: "one event", in: "event: task\ndata: {}\n\n", want: []sseEvent{{"task", "{}"}}},
		{name: "heartbeats around it", in: ": heartbeat\n\n: heartbeat\nevent: task\ndata: 1\n\n: heartbeat\n",
			want: []sseEvent{{"task", "1"}}},
		{name: "data split over lines", in: "event: task\ndata: {\"a\":\ndata: 1}\n\n", want: []sseEvent{{"task", "{\"a\":\n1}"}}},
		{name: "CRLF", in: "event: task\r\ndata: x\r\n\r\n", want: []sseEvent{{"task", "x"}}},
		{name: "no space after the colon", in: "event:task\ndata:x\n\n", want: []sseEvent{{"task", "x"}}},
		{name: "only the first space goes", in: "data:  x\n\n", want: []sseEvent{{"", " x"}}},
		{name: "id and retry ignored", in: "id: 7\nretry: 10\nevent: task\ndata: x\n\n", want: []sseEvent{{"task", "x"}}},
		{name: "event without data is not dispatched", in: "event: task\n\n", want: nil},
		{name: "cut off by the end", in: "event: task\ndata: x\n", want: nil},
		{name: "two events", in: "event: task\ndata: 1\n\nevent: task\ndata: 2\n\n", want: []sseEvent{{"task", "1"}, {"task", "2"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []sseEvent
			lines := 0
			err := readSSE(strings.NewReader(tt.in), func() { lines++ }, func(e sseEvent) error {
				got = append(got, e)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("events %q, want %q", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("event %d = %q, want %q", i, got[i], tt.want[i])
				}
			}
			if want := strings.Count(tt.in, "\n"); lines != want {
				t.Errorf("seen %d lines, want %d", lines, want)
			}
		})
	}
}

// sse serves an event stream written in pieces, each flushed on its own, so that the
// client meets lines and events split across reads; then it holds or closes the stream.
func sse(pieces []string, hold bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Accept") != "text/event-stream" {
			http.Error(w, "want Accept: text/event-stream", 400)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
		w.WriteHeader(200)
		for _, p := range pieces {
			io.WriteString(w, p)
			w.(http.Flusher).Flush()
			time.Sleep(time.Millisecond)
		}
		if hold {
			<-r.Context().Done()
		}
	}
}

func TestClientEvents(t *testing.T) {
	pieces := []string{
		": heartbeat\n\n",
		"event: task\ndata: {\"type\":\"task\",\"task\":{\"id\":\"t1\",\"sta", "te\":\"queued\"}}\n",
		"\n: heartbeat\n\n",
		"event: hello\ndata: a newer daemon's event\n\n",
		"event: task\r\ndata: {\"type\":\"task\",\r\ndata: \"task\":{\"id\":\"t1\",\"state\":\"done\"}}\r\n\r\n",
	}
	c := serve(t, "", sse(pieces, false))
	s, err := c.Events(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var got []task.Event
	for e := range s.C {
		got = append(got, e)
	}
	if len(got) != 2 || got[0].Task.State != task.Queued || got[1].Task.State != task.Done || got[1].Task.ID != "t1" {
		t.Fatalf("events %+v, want t1 queued then done", got)
	}
	if err := s.Err(); err == nil || !strings.Contains(err.Error(), "closed the event stream") {
		t.Errorf("Err after the daemon closed = %v", err)
	}
}

func TestClientEventsEnds(t *testing.T) {
	tests := []struct {
		name   string
		pieces []string
		idle   time.Duration
		cancel bool
		want   func(error) bool
	}{
		{name: "idle past the bound", pieces: []string{": heartbeat\n"}, idle: 50 * time.Millisecond,
			want: func(err error) bool { return errors.Is(err, ErrStreamIdle) }},
		{name: "caller cancels", pieces: []string{": heartbeat\n"}, idle: time.Minute, cancel: true,
			want: func(err error) bool { return errors.Is(err, context.Canceled) }},
		{name: "malformed event", pieces: []string{"event: task\ndata: {nope\n\n"}, idle: time.Minute,
			want: func(err error) bool { return err != nil && strings.Contains(err.Error(), "decode a task event") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := serve(t, "", sse(tt.pieces, true))
			c.idle = tt.idle
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			s, err := c.Events(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if tt.cancel {
				cancel()
			}
			for range s.C {
			}
			if !tt.want(s.Err()) {
				t.Errorf("Err = %v", s.Err())
			}
		})
	}
}

func TestClientEventsRefused(t *testing.T) {
	c := serve(t, "", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, "{}")
	}))
	if _, err := c.Events(context.Background()); err == nil || !strings.Contains(err.Error(), "not text/event-stream") {
		t.Fatalf("Events on a JSON answer: %v", err)
	}
}
