package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentbox/agentbox/outcome"
	"github.com/agentbox/agentbox/supervisor/task"
	"github.com/agentbox/agentbox/verdict"
)

// serve runs h on a unix socket in a temporary directory and returns a client of it, as
// the CLI reaches agentboxd. The directory is short: a socket path has ~108 bytes.
func serve(t *testing.T, token string, h http.Handler) *Client {
	t.Helper()
	dir, err := os.MkdirTemp("", "abcl")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "d.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.Listener.Close()
	srv.Listener = l
	srv.Start()
	t.Cleanup(srv.Close)
	c, err := New("unix://"+sock, token)
	if err != nil {
		t.Fatal(err)
	}
	c.retryCap, c.pollFloor = 10*time.Millisecond, time.Millisecond
	return c
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func apiError(w http.ResponseWriter, e *verdict.Error) {
	writeJSON(w, e.Code.HTTPStatus(), verdict.ErrorBody{Error: e})
}

func TestClientNewHost(t *testing.T) {
	tests := []struct {
		name, host, base, refusal string
	}{
		{name: "empty is the default socket", host: "", base: unixBase},
		{name: "bare absolute path", host: "/run/x.sock", base: unixBase},
		{name: "unix URL", host: "unix:///tmp/a.sock", base: unixBase},
		{name: "unix URL with a relative path", host: "unix://a.sock", refusal: "absolute path"},
		{name: "relative path", host: "a.sock", refusal: "want unix:///path.sock"},
		{name: "https", host: "https://box.example:8443", base: "https://box.example:8443"},
		{name: "https behind a path prefix", host: "https://box.example/agentbox/", base: "https://box.example/agentbox"},
		{name: "http to 127.0.0.1", host: "http://127.0.0.1:8080", base: "http://127.0.0.1:8080"},
		{name: "http to ::1", host: "http://[::1]:8080", base: "http://[::1]:8080"},
		{name: "http to localhost", host: "http://localhost:8080", base: "http://localhost:8080"},
		{name: "http to another host", host: "http://10.0.0.7:8080", refusal: "in clear"},
		{name: "http to a name", host: "http://box.example:8080", refusal: "loopback"},
		{name: "credentials in the URL", host: "https://u:p@box.example", refusal: "AGENTBOX_TOKEN"},
		{name: "another scheme", host: "ftp://box.example", refusal: "want unix:///path.sock"},
		{name: "a query", host: "https://box.example/?a=b", refusal: "no query"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := New(tt.host, "")
			if tt.refusal != "" {
				if !errors.Is(err, ErrBadHost) || !strings.Contains(err.Error(), tt.refusal) {
					t.Fatalf("New(%q) = %v, want ErrBadHost saying %q", tt.host, err, tt.refusal)
				}
				return
			}
			if err != nil {
				t.Fatalf("New(%q): %v", tt.host, err)
			}
			if c.base != tt.base {
				t.Errorf("New(%q).base = %q, want %q", tt.host, c.base, tt.base)
			}
		})
	}
}

func TestClientToken(t *testing.T) {
	for _, token := range []string{"", "s3cret"} {
		var got atomic.Value
		c := serve(t, token, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			got.Store(r.Header.Get("Authorization"))
			writeJSON(w, 200, task.ModuleList{})
		}))
		if _, err := c.ListModules(context.Background()); err != nil {
			t.Fatal(err)
		}
		want := ""
		if token != "" {
			want = "Bearer " + token
		}
		if got.Load() != want {
			t.Errorf("token %q: Authorization %q, want %q", token, got.Load(), want)
		}
	}
}

func TestClientErrorDecoding(t *testing.T) {
	tests := []struct {
		name       string
		handler    http.HandlerFunc
		status     int
		code       verdict.Code
		field      string
		retryAfter time.Duration
		message    string
	}{
		{name: "API error", status: 400, code: verdict.InvalidArgument, field: "limits.memory",
			handler: func(w http.ResponseWriter, r *http.Request) {
				apiError(w, &verdict.Error{Code: verdict.InvalidArgument, Field: "limits.memory", Value: "0", Message: "limits.memory 0: must be more than 0"})
			}, message: "must be more than 0"},
		{name: "unauthenticated", status: 401, code: verdict.Unauthenticated,
			handler: func(w http.ResponseWriter, r *http.Request) {
				apiError(w, &verdict.Error{Code: verdict.Unauthenticated, Message: "missing or wrong token"})
			}, message: "wrong token"},
		{name: "not found", status: 404, code: verdict.NotFound,
			handler: func(w http.ResponseWriter, r *http.Request) {
				apiError(w, &verdict.Error{Code: verdict.NotFound, Field: "id", Value: "t1", Message: "no task t1"})
			}, field: "id", message: "no task t1"},
		{name: "queue full keeps Retry-After", status: 429, code: verdict.QueueFull, retryAfter: 7 * time.Second,
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Retry-After", "7")
				apiError(w, &verdict.Error{Code: verdict.QueueFull, Message: "queue full"})
			}, message: "queue full"},
		{name: "queue full without Retry-After waits a second", status: 429, code: verdict.QueueFull, retryAfter: time.Second,
			handler: func(w http.ResponseWriter, r *http.Request) {
				apiError(w, &verdict.Error{Code: verdict.QueueFull, Message: "queue full"})
			}, message: "queue full"},
		{name: "not an API error", status: 502, code: verdict.SetupFailed,
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(502)
				io.WriteString(w, "<html>bad gateway</html>")
			}, message: "bad gateway"},
		{name: "a plain 404", status: 404, code: verdict.NotFound,
			handler: func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) },
			message: "without an API error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := serve(t, "", tt.handler)
			_, err := c.Get(context.Background(), "t1")
			var se *StatusError
			var ve *verdict.Error
			if !errors.As(err, &se) || !errors.As(err, &ve) {
				t.Fatalf("Get: %v (%T), want a *StatusError around a *verdict.Error", err, err)
			}
			if se.Status != tt.status || ve.Code != tt.code || ve.Field != tt.field || se.RetryAfter != tt.retryAfter {
				t.Errorf("got status %d code %s field %q retry-after %s, want %d %s %q %s",
					se.Status, ve.Code, ve.Field, se.RetryAfter, tt.status, tt.code, tt.field, tt.retryAfter)
			}
			if !strings.Contains(err.Error(), tt.message) {
				t.Errorf("message %q, want it to say %q", err, tt.message)
			}
		})
	}
}

func TestClientRetryAfter(t *testing.T) {
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name, v string
		want    time.Duration
		ok      bool
	}{
		{"absent", "", 0, false},
		{"seconds", "3", 3 * time.Second, true},
		{"zero", "0", 0, true},
		{"negative", "-3", 0, true},
		{"date", now.Add(5 * time.Second).Format(http.TimeFormat), 5 * time.Second, true},
		{"date past", now.Add(-5 * time.Second).Format(http.TimeFormat), 0, true},
		{"garbage", "soon", 0, false},
	}
	for _, tt := range tests {
		if got, ok := retryAfter(tt.v, now); got != tt.want || ok != tt.ok {
			t.Errorf("%s: retryAfter(%q) = %s, %v; want %s, %v", tt.name, tt.v, got, ok, tt.want, tt.ok)
		}
	}
}

func TestClientUnreachable(t *testing.T) {
	dir, err := os.MkdirTemp("", "abcl")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	host := "unix://" + filepath.Join(dir, "nobody.sock")
	c, err := New(host, "")
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Get(context.Background(), "t1")
	if !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), host) {
		t.Fatalf("Get on no daemon: %v, want ErrUnreachable naming %s", err, host)
	}
}

func TestClientSubmitRetriesQueueFull(t *testing.T) {
	var calls atomic.Int32
	var bodies [3]string
	c := serve(t, "", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		n := calls.Add(1)
		if n <= 3 {
			bodies[n-1] = string(b)
		}
		if n < 3 {
			w.Header().Set("Retry-After", "1")
			apiError(w, &verdict.Error{Code: verdict.QueueFull, Message: "queue full"})
			return
		}
		writeJSON(w, 202, task.Task{ID: "t1", State: task.Queued})
	}))
	req := task.SubmitRequest{Module: strings.Repeat("a", 64), Args: []string{"x"}}
	tk, err := c.Submit(context.Background(), req)
	if err != nil || tk.ID != "t1" {
		t.Fatalf("Submit = %+v, %v; want t1 after two 429s", tk, err)
	}
	if calls.Load() != 3 || bodies[0] != bodies[2] || bodies[0] == "" {
		t.Errorf("%d calls, bodies %q: want 3 identical ones", calls.Load(), bodies)
	}
}

func TestClientSubmitQueueFullUntilContextEnds(t *testing.T) {
	c := serve(t, "", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		apiError(w, &verdict.Error{Code: verdict.QueueFull, Message: "queue full"})
	}))
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := c.Submit(ctx, task.SubmitRequest{Module: strings.Repeat("a", 64)})
	var ve *verdict.Error
	if !errors.As(err, &ve) || ve.Code != verdict.QueueFull {
		t.Fatalf("Submit on a queue that stays full: %v, want the last queue_full", err)
	}
}

func TestClientSubmitBatch(t *testing.T) {
	c := serve(t, "", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/tasks:batch" {
			http.NotFound(w, r)
			return
		}
		var req task.BatchRequest
		json.NewDecoder(r.Body).Decode(&req)
		resp := task.BatchResponse{}
		for i := range req.Tasks {
			if i == 1 {
				resp.Results = append(resp.Results, task.BatchResult{Error: &verdict.Error{Code: verdict.InvalidArgument, Message: "bad"}})
				continue
			}
			resp.Results = append(resp.Results, task.BatchResult{Task: &task.Task{ID: "t" + string(rune('0'+i))}})
		}
		writeJSON(w, 200, resp)
	}))
	res, err := c.SubmitBatch(context.Background(), make([]task.SubmitRequest, 3))
	if err != nil || len(res) != 3 || res[0].Task.ID != "t0" || res[1].Error == nil || res[2].Task.ID != "t2" {
		t.Fatalf("SubmitBatch = %+v, %v", res, err)
	}
}

func TestClientListQuery(t *testing.T) {
	var got atomic.Value
	c := serve(t, "", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.Store(r.URL.RawQuery)
		writeJSON(w, 200, task.Page{NextCursor: "c2"})
	}))
	f := task.Filter{State: task.Done, Outcome: outcome.Trap, Labels: map[string]string{"b": "2", "a": "1"},
		Since: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC), Cursor: "c1", Limit: 50}
	p, err := c.List(context.Background(), f)
	if err != nil || p.NextCursor != "c2" {
		t.Fatalf("List = %+v, %v", p, err)
	}
	want := "cursor=c1&label=a%3D1&label=b%3D2&limit=50&outcome=trap&since=2025-01-02T03%3A04%3A05Z&state=done"
	if got.Load() != want {
		t.Errorf("query %q, want %q", got.Load(), want)
	}
}

func TestClientPushModule(t *testing.T) {
	wasm := []byte("\x00asm\x01\x00\x00\x00")
	c := serve(t, "", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if r.Method != "POST" || r.URL.Path != "/v1/modules" || !bytes.Equal(b, wasm) ||
			r.Header.Get("Content-Type") != "application/wasm" || r.ContentLength != int64(len(wasm)) {
			http.Error(w, "unexpected "+r.Method+" "+r.URL.Path, 400)
			return
		}
		writeJSON(w, 201, task.Module{Digest: "d1", Bytes: uint64(len(b))})
	}))
	m, err := c.PushModule(context.Background(), bytes.NewReader(wasm), int64(len(wasm)))
	if err != nil || m.Digest != "d1" || m.Bytes != 8 {
		t.Fatalf("PushModule = %+v, %v", m, err)
	}
}

func TestClientWaitLoopsUntilFinal(t *testing.T) {
	var polls atomic.Int32
	var badTimeout atomic.Value
	c := serve(t, "", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/tasks/t%201/wait" && r.URL.Path != "/v1/tasks/t 1/wait" {
			http.NotFound(w, r)
			return
		}
		if d, err := time.ParseDuration(r.URL.Query().Get("timeout")); err != nil || d <= 0 || d > waitPoll {
			badTimeout.Store(r.URL.Query().Get("timeout"))
		}
		if polls.Add(1) < 3 {
			writeJSON(w, 200, task.Task{ID: "t 1", State: task.Running})
			return
		}
		writeJSON(w, 200, task.Task{ID: "t 1", State: task.Done, Verdict: &verdict.Verdict{Outcome: outcome.OK}})
	}))
	tk, err := c.Wait(context.Background(), "t 1")
	if err != nil || !tk.Final() || tk.Outcome() != outcome.OK || polls.Load() != 3 {
		t.Fatalf("Wait = %+v, %v after %d polls; want ok after 3", tk, err, polls.Load())
	}
	if v := badTimeout.Load(); v != nil {
		t.Errorf("a poll asked for timeout %q, want a duration in (0, %s]", v, waitPoll)
	}
}

func TestClientWaitContextEnds(t *testing.T) {
	c := serve(t, "", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, task.Task{ID: "t1", State: task.Running})
	}))
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	tk, err := c.Wait(ctx, "t1")
	if !errors.Is(err, context.DeadlineExceeded) || tk.ID != "t1" || tk.State != task.Running {
		t.Fatalf("Wait past the deadline = %+v, %v; want the running copy and DeadlineExceeded", tk, err)
	}
}

func TestClientPollTimeout(t *testing.T) {
	now := time.Now()
	near, cancel := context.WithDeadline(context.Background(), now.Add(2*time.Second))
	defer cancel()
	past, cancel2 := context.WithDeadline(context.Background(), now.Add(-time.Second))
	defer cancel2()
	tests := []struct {
		name string
		ctx  context.Context
		want time.Duration
	}{
		{"no deadline", context.Background(), waitPoll},
		{"near deadline", near, 2 * time.Second},
		{"past deadline", past, time.Millisecond},
	}
	for _, tt := range tests {
		if got := pollTimeout(tt.ctx, now); got != tt.want {
			t.Errorf("%s: pollTimeout = %s, want %s", tt.name, got, tt.want)
		}
	}
}
