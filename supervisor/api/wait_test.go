package api

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// deadlineRecorder records the write deadlines a handler sets, as a connection would.
type deadlineRecorder struct {
	*httptest.ResponseRecorder
	deadlines []time.Time
}

func (d *deadlineRecorder) SetWriteDeadline(t time.Time) error {
	d.deadlines = append(d.deadlines, t)
	return nil
}

// TestLongRequestsClearTheirWriteDeadline: a wait and an event stream move the write
// deadline past the server's, and leave none behind for the next request on the
// connection.
func TestLongRequestsClearTheirWriteDeadline(t *testing.T) {
	tests := []struct {
		name   string
		path   string
		stream bool
	}{
		{name: "wait", path: "/v1/tasks/t2/wait?timeout=0s"},
		{name: "events", path: "/v1/events", stream: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake()
			s := New(f, Options{})
			h := &harness{t: t, f: f}
			h.seed()
			if tt.stream {
				go func() { close((<-f.subs).ch) }() // the event stream ends at once
			}
			w := &deadlineRecorder{ResponseRecorder: httptest.NewRecorder()}
			s.Handler().ServeHTTP(w, httptest.NewRequest("GET", tt.path, nil))
			if w.Code != http.StatusOK {
				t.Fatalf("status %d: %s", w.Code, w.Body)
			}
			if len(w.deadlines) < 2 || w.deadlines[0].IsZero() {
				t.Fatalf("deadlines %v: want one set, then cleared", w.deadlines)
			}
			if last := w.deadlines[len(w.deadlines)-1]; !last.IsZero() {
				t.Errorf("the last deadline is %v, want none", last)
			}
		})
	}
}
