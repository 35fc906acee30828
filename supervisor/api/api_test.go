package api

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/agentbox/agentbox/supervisor/task"
	"github.com/agentbox/agentbox/verdict"
)

var jsonCT = []string{"Content-Type", "application/json"}

// seed uploads a module and submits two tasks: t1 final (with an attempt and output),
// t2 running under a lease. It returns the module's digest.
func (h *harness) seed() string {
	h.t.Helper()
	m, err := h.f.PutModule(context.Background(), DefaultTenant, wasmBytes)
	if err != nil {
		h.t.Fatal(err)
	}
	for range 2 {
		if _, _, err := h.f.Submit(context.Background(), DefaultTenant, task.SubmitRequest{Module: m.Digest, Labels: map[string]string{"k": "v"}}); err != nil {
			h.t.Fatal(err)
		}
	}
	h.f.finish("t1")
	h.f.running("t2")
	return m.Digest
}

func submitBody(digest string) io.Reader {
	return strings.NewReader(`{"module":"` + digest + `","args":["a"],"stdin":"aGk=","limits":{"memory":"64Mi"},"labels":{"k":"v"}}`)
}

// TestEveryRouteAnswersAsDocumented makes one successful request on every route; do
// checks each answer's status and body against the document.
func TestEveryRouteAnswersAsDocumented(t *testing.T) {
	h := newHarness(t, Options{Metrics: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		io.WriteString(w, "up 1\n")
	})})
	digest := h.seed()
	other, _ := h.f.PutModule(context.Background(), DefaultTenant, append(append([]byte{}, wasmBytes...), 1))
	samples := map[string]req{
		"POST /v1/modules":            {method: "POST", path: "/v1/modules", body: bytes.NewReader(wasmBytes), header: []string{"Content-Type", "application/wasm"}},
		"GET /v1/modules":             {method: "GET", path: "/v1/modules"},
		"GET /v1/modules/{digest}":    {method: "GET", path: "/v1/modules/" + digest},
		"DELETE /v1/modules/{digest}": {method: "DELETE", path: "/v1/modules/" + other.Digest},
		"POST /v1/tasks":              {method: "POST", path: "/v1/tasks", body: submitBody(digest), header: jsonCT},
		"POST /v1/tasks:batch":        {method: "POST", path: "/v1/tasks:batch", body: strings.NewReader(`{"tasks":[{"module":"` + digest + `"},{"module":"` + digest + `","limits":{"memory":"1Mi"}}]}`), header: jsonCT},
		"GET /v1/tasks":               {method: "GET", path: "/v1/tasks?state=done&label=k=v&limit=10&since=2025-01-01T00:00:00Z"},
		"GET /v1/tasks/{id}":          {method: "GET", path: "/v1/tasks/t1"},
		"GET /v1/tasks/{id}/verdict":  {method: "GET", path: "/v1/tasks/t1/verdict"},
		"POST /v1/tasks/{id}/cancel":  {method: "POST", path: "/v1/tasks/t2/cancel"},
		"GET /v1/tasks/{id}/wait":     {method: "GET", path: "/v1/tasks/t1/wait?timeout=5s"},
		"GET /v1/openapi.json":        {method: "GET", path: "/v1/openapi.json"},
		"GET /healthz":                {method: "GET", path: "/healthz"},
		"GET /readyz":                 {method: "GET", path: "/readyz"},
		"GET /metrics":                {method: "GET", path: "/metrics"},
		"GET /v1/events":              {}, // a stream: TestEvents
	}
	for _, rt := range h.s.routes() {
		key := rt.Method + " " + rt.Path
		rq, ok := samples[key]
		if !ok {
			t.Errorf("no sample request for %s", key)
			continue
		}
		if rq.method == "" {
			continue
		}
		t.Run(key, func(t *testing.T) {
			h.t = t
			if res := h.do(rq); res.status != rt.Status {
				t.Errorf("status %d, want %d: %s", res.status, rt.Status, res.body)
			}
		})
	}
}

// TestStatuses maps requests to statuses and error fields: the HTTP side of every
// refusal.
func TestStatuses(t *testing.T) {
	digest := strings.Repeat("a", 64)
	big := strings.Repeat(" ", 200)
	tests := []struct {
		name   string
		opts   Options
		setup  func(h *harness) // after seed
		req    req
		status int
		code   verdict.Code
		field  string
		value  string
		header map[string]string
	}{
		{name: "module ok", req: req{method: "POST", path: "/v1/modules", body: bytes.NewReader(wasmBytes)}, status: 201},
		{name: "module octet-stream", req: req{method: "POST", path: "/v1/modules", body: bytes.NewReader(wasmBytes), header: []string{"Content-Type", "application/octet-stream"}}, status: 201},
		{name: "module refused by the backend", req: req{method: "POST", path: "/v1/modules", body: strings.NewReader("nope")}, status: 400, code: verdict.InvalidArgument, field: "body"},
		{name: "module empty", req: req{method: "POST", path: "/v1/modules", body: strings.NewReader("")}, status: 400, code: verdict.InvalidArgument, field: "body"},
		{name: "module wrong content type", req: req{method: "POST", path: "/v1/modules", body: bytes.NewReader(wasmBytes), header: []string{"Content-Type", "text/plain"}}, status: 400, code: verdict.InvalidArgument, field: "Content-Type", value: "text/plain"},
		{name: "module over the cap", opts: Options{MaxModuleBytes: 4}, req: req{method: "POST", path: "/v1/modules", body: bytes.NewReader(wasmBytes)}, status: 413, code: verdict.TooLarge, field: "body", value: "4"},
		{name: "module over the cap, chunked", opts: Options{MaxModuleBytes: 4}, req: req{method: "POST", path: "/v1/modules", body: io.MultiReader(bytes.NewReader(wasmBytes))}, status: 413, code: verdict.TooLarge, field: "body", value: "4"},
		{name: "module bad digest", req: req{method: "GET", path: "/v1/modules/xyz"}, status: 400, code: verdict.InvalidArgument, field: "digest", value: "xyz"},
		{name: "module uppercase digest", req: req{method: "GET", path: "/v1/modules/" + strings.Repeat("A", 64)}, status: 400, code: verdict.InvalidArgument, field: "digest"},
		{name: "module missing", req: req{method: "GET", path: "/v1/modules/" + digest}, status: 404, code: verdict.NotFound},
		{name: "delete module missing", req: req{method: "DELETE", path: "/v1/modules/" + digest}, status: 404, code: verdict.NotFound},
		{name: "modules unknown query", req: req{method: "GET", path: "/v1/modules?all=1"}, status: 400, code: verdict.InvalidArgument, field: "all"},

		{name: "submit idempotent again", setup: func(h *harness) {
			h.do(req{method: "POST", path: "/v1/tasks", body: strings.NewReader(`{"module":"` + h.digest() + `","idempotency_key":"k1"}`)})
		}, req: req{method: "POST", path: "/v1/tasks", body: bodyf(`{"module":"%s","idempotency_key":"k1"}`)}, status: 200, header: map[string]string{"Location": "/v1/tasks/t3"}},
		{name: "submit new", req: req{method: "POST", path: "/v1/tasks", body: bodyf(`{"module":"%s"}`), header: jsonCT}, status: 202, header: map[string]string{"Location": "/v1/tasks/t3"}},
		{name: "submit unknown field", req: req{method: "POST", path: "/v1/tasks", body: bodyf(`{"module":"%s","nope":1}`)}, status: 400, code: verdict.InvalidArgument, field: "nope"},
		{name: "submit unknown nested field", req: req{method: "POST", path: "/v1/tasks", body: bodyf(`{"module":"%s","limits":{"memry":"1Gi"}}`)}, status: 400, code: verdict.InvalidArgument, field: "limits.memry"},
		{name: "submit malformed", req: req{method: "POST", path: "/v1/tasks", body: strings.NewReader(`{"module":}`)}, status: 400, code: verdict.InvalidArgument, field: "body", value: "11"},
		{name: "submit cut short", req: req{method: "POST", path: "/v1/tasks", body: strings.NewReader(`{"module":"x"`)}, status: 400, code: verdict.InvalidArgument, field: "body"},
		{name: "submit trailing data", req: req{method: "POST", path: "/v1/tasks", body: bodyf(`{"module":"%s"} {}`)}, status: 400, code: verdict.InvalidArgument, field: "body"},
		{name: "submit trailing brace", req: req{method: "POST", path: "/v1/tasks", body: bodyf(`{"module":"%s"}}`)}, status: 400, code: verdict.InvalidArgument, field: "body"},
		{name: "submit empty", req: req{method: "POST", path: "/v1/tasks", body: strings.NewReader(``)}, status: 400, code: verdict.InvalidArgument, field: "body"},
		{name: "submit wrong type", req: req{method: "POST", path: "/v1/tasks", body: bodyf(`{"module":"%s","limits":{"cpus":"two"}}`)}, status: 400, code: verdict.InvalidArgument, field: "limits.cpus", value: "string"},
		{name: "submit bad base64", req: req{method: "POST", path: "/v1/tasks", body: bodyf(`{"module":"%s","stdin":"!!"}`)}, status: 400, code: verdict.InvalidArgument, field: "stdin"},
		{name: "submit bad limit", req: req{method: "POST", path: "/v1/tasks", body: bodyf(`{"module":"%s","limits":{"memory":"lots"}}`)}, status: 400, code: verdict.InvalidArgument, field: "limits.memory", value: "lots"},
		{name: "submit form content type", req: req{method: "POST", path: "/v1/tasks", body: bodyf(`{"module":"%s"}`), header: []string{"Content-Type", "application/x-www-form-urlencoded"}}, status: 400, code: verdict.InvalidArgument, field: "Content-Type"},
		{name: "submit over the body cap", opts: Options{MaxBodyBytes: 100}, req: req{method: "POST", path: "/v1/tasks", body: bodyf(`{"module":"%s"}` + big)}, status: 413, code: verdict.TooLarge, field: "body", value: "100"},
		{name: "submit missing module", req: req{method: "POST", path: "/v1/tasks", body: strings.NewReader(`{"module":"` + digest + `"}`)}, status: 404, code: verdict.NotFound, field: "module"},
		{name: "submit queue full", setup: func(h *harness) {
			h.f.submitErr = verdict.Errorf(verdict.QueueFull, "", "", "tenant default has 10 tasks queued, its bound")
		}, req: req{method: "POST", path: "/v1/tasks", body: bodyf(`{"module":"%s"}`)}, status: 429, code: verdict.QueueFull, header: map[string]string{"Retry-After": "1"}},
		{name: "submit internal error", setup: func(h *harness) {
			h.f.submitErr = errors.New("nats: connection closed at /var/lib/secret")
		}, req: req{method: "POST", path: "/v1/tasks", body: bodyf(`{"module":"%s"}`)}, status: 500, code: verdict.SetupFailed},

		{name: "batch empty", req: req{method: "POST", path: "/v1/tasks:batch", body: strings.NewReader(`{"tasks":[]}`)}, status: 400, code: verdict.InvalidArgument, field: "tasks", value: "0"},
		{name: "batch too many", req: req{method: "POST", path: "/v1/tasks:batch", body: strings.NewReader(`{"tasks":[` + strings.Repeat(`{"module":"x"},`, task.MaxBatch) + `{"module":"x"}]}`)}, status: 413, code: verdict.TooLarge, field: "tasks", value: "1001"},
		{name: "batch unknown field in an entry", req: req{method: "POST", path: "/v1/tasks:batch", body: bodyf(`{"tasks":[{"module":"%s"},{"module":"x","retry":{"tries":2}}]}`)}, status: 400, code: verdict.InvalidArgument, field: "tasks[1].retry.tries"},

		{name: "list bad state", req: req{method: "GET", path: "/v1/tasks?state=lost"}, status: 400, code: verdict.InvalidArgument, field: "state", value: "lost"},
		{name: "list bad outcome", req: req{method: "GET", path: "/v1/tasks?outcome=fine"}, status: 400, code: verdict.InvalidArgument, field: "outcome", value: "fine"},
		{name: "list label without value", req: req{method: "GET", path: "/v1/tasks?label=k"}, status: 400, code: verdict.InvalidArgument, field: "label", value: "k"},
		{name: "list label twice", req: req{method: "GET", path: "/v1/tasks?label=k=1&label=k=2"}, status: 400, code: verdict.InvalidArgument, field: "label"},
		{name: "list bad since", req: req{method: "GET", path: "/v1/tasks?since=yesterday"}, status: 400, code: verdict.InvalidArgument, field: "since", value: "yesterday"},
		{name: "list until before since", req: req{method: "GET", path: "/v1/tasks?since=2025-01-02T00:00:00Z&until=2025-01-01T00:00:00Z"}, status: 400, code: verdict.InvalidArgument, field: "until"},
		{name: "list limit zero", req: req{method: "GET", path: "/v1/tasks?limit=0"}, status: 400, code: verdict.InvalidArgument, field: "limit", value: "0"},
		{name: "list limit too big", req: req{method: "GET", path: "/v1/tasks?limit=1001"}, status: 400, code: verdict.InvalidArgument, field: "limit"},
		{name: "list state twice", req: req{method: "GET", path: "/v1/tasks?state=done&state=queued"}, status: 400, code: verdict.InvalidArgument, field: "state"},
		{name: "list unknown parameter", req: req{method: "GET", path: "/v1/tasks?stat=done"}, status: 400, code: verdict.InvalidArgument, field: "stat"},
		{name: "list bad escape", req: req{method: "GET", path: "/v1/tasks?state=%zz"}, status: 400, code: verdict.InvalidArgument, field: "query"},
		{name: "list semicolon", req: req{method: "GET", path: "/v1/tasks?state=done;limit=1"}, status: 400, code: verdict.InvalidArgument, field: "query"},
		{name: "list paged", req: req{method: "GET", path: "/v1/tasks?limit=1&cursor=abc"}, status: 200},

		{name: "get missing", req: req{method: "GET", path: "/v1/tasks/t9"}, status: 404, code: verdict.NotFound, field: "id"},
		{name: "get bad id", req: req{method: "GET", path: "/v1/tasks/a.b"}, status: 400, code: verdict.InvalidArgument, field: "id", value: "a.b"},
		{name: "get unknown query", req: req{method: "GET", path: "/v1/tasks/t1?x=1"}, status: 400, code: verdict.InvalidArgument, field: "x"},
		{name: "verdict not final", req: req{method: "GET", path: "/v1/tasks/t2/verdict"}, status: 404, code: verdict.NotFound},
		{name: "cancel missing", req: req{method: "POST", path: "/v1/tasks/t9/cancel"}, status: 404, code: verdict.NotFound},
		{name: "wait times out on a running task", req: req{method: "GET", path: "/v1/tasks/t2/wait?timeout=0s"}, status: 200},
		{name: "wait bad timeout", req: req{method: "GET", path: "/v1/tasks/t2/wait?timeout=soon"}, status: 400, code: verdict.InvalidArgument, field: "timeout", value: "soon"},
		{name: "wait negative timeout", req: req{method: "GET", path: "/v1/tasks/t2/wait?timeout=-1s"}, status: 400, code: verdict.InvalidArgument, field: "timeout"},
		{name: "wait unknown parameter", req: req{method: "GET", path: "/v1/tasks/t2/wait?time=1s"}, status: 400, code: verdict.InvalidArgument, field: "time"},
		{name: "wait missing", req: req{method: "GET", path: "/v1/tasks/t9/wait?timeout=0s"}, status: 404, code: verdict.NotFound},

		{name: "unknown route", req: req{method: "GET", path: "/v2/tasks"}, status: 404, code: verdict.NotFound, field: "path", value: "/v2/tasks"},
		{name: "unknown route below v1", req: req{method: "GET", path: "/v1/tasks/t1/logs"}, status: 404, code: verdict.NotFound},
		{name: "wrong method", req: req{method: "PUT", path: "/v1/tasks"}, status: 405, code: verdict.InvalidArgument, field: "method", value: "PUT", header: map[string]string{"Allow": "GET, HEAD, POST"}},
		{name: "wrong method on a task", req: req{method: "DELETE", path: "/v1/tasks/t1"}, status: 405, code: verdict.InvalidArgument, field: "method", header: map[string]string{"Allow": "GET, HEAD"}},
		{name: "readyz not ready", setup: func(h *harness) {
			h.f.readyErr = verdict.Errorf(verdict.Unsupported, "", "", "JetStream is not reachable: nats: timeout")
		}, req: req{method: "GET", path: "/readyz"}, status: 503, code: verdict.Unsupported},
		{name: "readyz not ready, plain error", setup: func(h *harness) {
			h.f.readyErr = errors.New("sandbox self-check failed")
		}, req: req{method: "GET", path: "/readyz"}, status: 503, code: verdict.Unsupported},
		{name: "metrics off", req: req{method: "GET", path: "/metrics"}, status: 404, code: verdict.NotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, tt.opts)
			d := h.seed()
			if tt.setup != nil {
				tt.setup(h)
			}
			if b, ok := tt.req.body.(*templated); ok {
				b.fill(d)
			}
			res := h.do(tt.req)
			if res.status != tt.status {
				t.Fatalf("status %d, want %d: %s", res.status, tt.status, res.body)
			}
			for k, v := range tt.header {
				if got := res.header.Get(k); got != v {
					t.Errorf("header %s %q, want %q", k, got, v)
				}
			}
			if tt.code == "" {
				return
			}
			e := res.errorOf(t)
			if e.Code != tt.code || (tt.field != "" && e.Field != tt.field) || (tt.value != "" && e.Value != tt.value) {
				t.Errorf("error %+v, want code %s field %q value %q", e, tt.code, tt.field, tt.value)
			}
			if e.Message == "" {
				t.Errorf("error %+v has no message", e)
			}
		})
	}
}

// digest is the seeded module's digest.
func (h *harness) digest() string {
	ms, _ := h.f.ListModules(context.Background(), DefaultTenant)
	return ms[0].Digest
}

// templated is a body with %s for the seeded module's digest, filled in once the test
// has seeded it.
type templated struct {
	format string
	r      io.Reader
}

func bodyf(format string) *templated { return &templated{format: format} }

func (b *templated) fill(digest string) { b.r = strings.NewReader(fmt.Sprintf(b.format, digest)) }

func (b *templated) Read(p []byte) (int, error) { return b.r.Read(p) }

// TestInternalErrorIsLoggedNotSent: a cause that is not a *verdict.Error reaches the log
// and never the client.
func TestInternalErrorIsLoggedNotSent(t *testing.T) {
	h := newHarness(t, Options{})
	d := h.seed()
	h.f.submitErr = errors.New("nats: connection closed at /var/lib/secret")
	res := h.do(req{method: "POST", path: "/v1/tasks", body: strings.NewReader(`{"module":"` + d + `"}`)})
	if bytes.Contains(res.body, []byte("secret")) || res.errorOf(t).Message != internalMessage {
		t.Errorf("the answer tells the cause: %s", res.body)
	}
	if !strings.Contains(h.logs.String(), "/var/lib/secret") {
		t.Errorf("the log lacks the cause: %s", h.logs.String())
	}
}

func TestBatchEntriesStandAlone(t *testing.T) {
	h := newHarness(t, Options{})
	d := h.seed()
	body := `{"tasks":[{"module":"` + d + `"},{"module":"` + d + `","limits":{"memory":"1Mi"}},{"module":"` + strings.Repeat("b", 64) + `"}]}`
	res := h.do(req{method: "POST", path: "/v1/tasks:batch", body: strings.NewReader(body)})
	var br task.BatchResponse
	if err := json.Unmarshal(res.body, &br); err != nil || res.status != 200 || len(br.Results) != 3 {
		t.Fatalf("status %d, %v: %s", res.status, err, res.body)
	}
	if br.Results[0].Task == nil || br.Results[0].Task.ID != "t3" {
		t.Errorf("entry 0: want task t3, got %+v", br.Results[0])
	}
	if e := br.Results[1].Error; e == nil || e.Field != "tasks[1].limits.memory" || e.Code != verdict.InvalidArgument {
		t.Errorf("entry 1: want invalid_argument on tasks[1].limits.memory, got %+v", br.Results[1])
	}
	if e := br.Results[2].Error; e == nil || e.Code != verdict.NotFound || e.Field != "tasks[2].module" {
		t.Errorf("entry 2: want not_found on tasks[2].module, got %+v", br.Results[2])
	}
}

func TestBatchQueueFullSaysRetryAfter(t *testing.T) {
	h := newHarness(t, Options{})
	d := h.seed()
	h.f.submitErr = verdict.Errorf(verdict.QueueFull, "", "", "the host's queue is full")
	res := h.do(req{method: "POST", path: "/v1/tasks:batch", body: strings.NewReader(`{"tasks":[{"module":"` + d + `"}]}`)})
	if res.status != 200 || res.header.Get("Retry-After") != "1" || !strings.Contains(string(res.body), `"field": "tasks[0]"`) {
		t.Errorf("status %d, Retry-After %q: %s", res.status, res.header.Get("Retry-After"), res.body)
	}
}

// TestWaitReturnsWhenFinal: a long-poll on a queued task answers once it is final, with
// the final record, well before its timeout.
func TestWaitReturnsWhenFinal(t *testing.T) {
	h := newHarness(t, Options{})
	d := h.seed()
	h.do(req{method: "POST", path: "/v1/tasks", body: strings.NewReader(`{"module":"` + d + `"}`)})
	got := make(chan *result, 1)
	go func() {
		got <- h.do(req{method: "GET", path: "/v1/tasks/t3/wait?timeout=1h"})
	}()
	h.waitFor(func() bool { return h.f.waiting("t3") })
	h.f.finish("t3")
	res := <-got
	var tk task.Task
	if err := json.Unmarshal(res.body, &tk); err != nil || tk.State != task.Done {
		t.Errorf("status %d: want the final task, got %s (%v)", res.status, res.body, err)
	}
}

func TestWaitIsCappedAtWaitMax(t *testing.T) {
	h := newHarness(t, Options{WaitMax: time.Millisecond})
	h.seed()
	res := h.do(req{method: "GET", path: "/v1/tasks/t2/wait?timeout=1h"})
	var tk task.Task
	if err := json.Unmarshal(res.body, &tk); err != nil || tk.State != task.Running {
		t.Errorf("status %d: want the running task after WaitMax, got %s (%v)", res.status, res.body, err)
	}
}

func TestNoTokensMeansTenantDefault(t *testing.T) {
	h := newHarness(t, Options{})
	h.do(req{method: "GET", path: "/v1/modules"})
	if got := h.f.lastTenant(); got != DefaultTenant {
		t.Errorf("tenant %q, want %q", got, DefaultTenant)
	}
}

func TestEmptyListsAreArrays(t *testing.T) {
	h := newHarness(t, Options{})
	for _, path := range []string{"/v1/modules", "/v1/tasks"} {
		res := h.do(req{method: "GET", path: path})
		if !bytes.Contains(res.body, []byte("[]")) || bytes.Contains(res.body, []byte("null")) {
			t.Errorf("%s: want an empty array, got %s", path, res.body)
		}
	}
}

// TestVerdictIsTheCLIsJSON: the verdict route prints the object as `agentbox run --json`
// does (indented two spaces, final newline), output included.
func TestVerdictIsTheCLIsJSON(t *testing.T) {
	h := newHarness(t, Options{})
	h.seed()
	res := h.do(req{method: "GET", path: "/v1/tasks/t1/verdict"})
	v, _ := h.f.Verdict(context.Background(), DefaultTenant, "t1")
	v.Warnings = []string{}
	want, _ := json.MarshalIndent(v, "", "  ")
	if !bytes.Equal(res.body, append(want, '\n')) {
		t.Errorf("got\n%s\nwant\n%s", res.body, want)
	}
	if !bytes.Contains(res.body, []byte(`"stdout": "hello\n"`)) {
		t.Errorf("no stdout in %s", res.body)
	}
}

// waitFor polls cond until it holds, failing the test after a generous deadline: tests
// wait for states, never for durations.
func (h *harness) waitFor(cond func() bool) {
	h.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			h.t.Fatal("condition not reached within 30s")
		}
		time.Sleep(time.Millisecond)
	}
}

// readEvent reads SSE lines until one whole frame (a blank line ends it).
func readFrame(r *bufio.Reader) (string, error) {
	var b strings.Builder
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return b.String(), err
		}
		if line == "\n" {
			return b.String(), nil
		}
		b.WriteString(line)
	}
}
