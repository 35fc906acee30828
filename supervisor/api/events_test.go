package api

import (
	"bufio"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/agentbox/agentbox/supervisor/task"
)

// openEvents opens GET /v1/events and returns the stream and the subscription the
// backend got (the headers arrive only after it was made).
func (h *harness) openEvents(header ...string) (*http.Response, subscription) {
	h.t.Helper()
	r, _ := http.NewRequest("GET", h.srv.URL+"/v1/events", nil)
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Set(header[i], header[i+1])
	}
	resp, err := h.srv.Client().Do(r)
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != 200 {
		h.t.Fatalf("status %d", resp.StatusCode)
	}
	select {
	case sub := <-h.f.subs:
		return resp, sub
	default:
		h.t.Fatal("the headers came before the subscription was made")
	}
	return nil, subscription{}
}

func TestEventsFraming(t *testing.T) {
	h := newHarness(t, Options{SSEHeartbeat: time.Millisecond})
	resp, sub := h.openEvents()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Errorf("Content-Type %q", ct)
	}
	if sub.tenant != DefaultTenant {
		t.Errorf("subscribed tenant %q", sub.tenant)
	}
	go func() {
		sub.ch <- task.Event{Type: "task", Task: task.Task{ID: "t1", State: task.Queued, Priority: task.Normal, CreatedAt: testTime, UpdatedAt: testTime}}
	}()
	r := bufio.NewReader(resp.Body)
	var sawEvent bool
	heartbeats := 0
	for !sawEvent || heartbeats < 2 {
		frame, err := readFrame(r)
		if err != nil {
			t.Fatalf("after %d heartbeats, event %v: %v", heartbeats, sawEvent, err)
		}
		switch {
		case frame == ": heartbeat\n":
			heartbeats++
		case strings.HasPrefix(frame, "event: task\ndata: "):
			checkEventFrame(t, h, frame)
			sawEvent = true
		case frame == "":
		default:
			t.Fatalf("unexpected frame %q", frame)
		}
	}
}

func checkEventFrame(t *testing.T, h *harness, frame string) {
	t.Helper()
	data, ok := strings.CutPrefix(frame, "event: task\ndata: ")
	if !ok || strings.Count(data, "\n") != 1 {
		t.Fatalf("frame %q: want one event line and one data line", frame)
	}
	var v any
	if err := json.Unmarshal([]byte(data), &v); err != nil {
		t.Fatalf("data %q: %v", data, err)
	}
	if err := h.doc.validate(v, &oaSchema{Ref: "#/components/schemas/Event"}, "$"); err != nil {
		t.Errorf("event %s: %v", data, err)
	}
	var ev task.Event
	json.Unmarshal([]byte(data), &ev)
	if ev.Task.ID != "t1" || ev.Task.Attempts == nil {
		t.Errorf("event %+v: want task t1 with attempts []", ev)
	}
}

// TestEventsEndWhenTheClientGoes: the subscription's context ends with the connection.
func TestEventsEndWhenTheClientGoes(t *testing.T) {
	h := newHarness(t, Options{})
	resp, sub := h.openEvents()
	resp.Body.Close()
	select {
	case <-sub.ctx.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("the subscription outlived its client by 30s")
	}
}

// TestEventsEndWhenTheBackendCloses: a closed channel ends the stream cleanly.
func TestEventsEndWhenTheBackendCloses(t *testing.T) {
	h := newHarness(t, Options{})
	resp, sub := h.openEvents()
	close(sub.ch)
	r := bufio.NewReader(resp.Body)
	for {
		if _, err := readFrame(r); err != nil {
			return // EOF: the stream ended
		}
	}
}

func TestEventsNeedAToken(t *testing.T) {
	toks, _ := ParseTokens(strings.NewReader(HashToken("alpha")+" team-a\n"), "test")
	h := newHarness(t, Options{Tokens: toks})
	if res := h.do(req{method: "GET", path: "/v1/events"}); res.status != 401 {
		t.Fatalf("status %d, want 401", res.status)
	}
	_, sub := h.openEvents("Authorization", "Bearer alpha")
	if sub.tenant != "team-a" {
		t.Errorf("subscribed tenant %q, want team-a", sub.tenant)
	}
}
