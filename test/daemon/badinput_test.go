package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/agentbox/agentbox/supervisor/task"
	"github.com/agentbox/agentbox/verdict"
)

// TestBadInput sends every endpoint of the real daemon input it must refuse, and checks
// the status, the one error shape, and that the error names the field and the value.
func TestBadInput(t *testing.T) {
	d := startDaemon(t, options{args: []string{"--max-module-size", "64Ki", "--max-queued-per-tenant", "2", "--slots", "1"}})
	c := d.client("")
	hello := push(t, c, "../../testdata/modules/hello.wasm")
	loop := push(t, c, loopModule)
	// Fill the queue: one running, two queued (the bound), so the next is 429.
	for i := 0; i < 3; i++ {
		if _, err := c.Submit(context.Background(), task.SubmitRequest{Module: loop, Limits: task.Limits{Timeout: "5m"}}); err != nil {
			t.Fatal(err)
		}
	}
	big := bytes.Repeat([]byte{0}, 65<<10)
	garbage, _ := os.ReadFile("../../testdata/modules/invalid.wasm")
	sub := func(body string) string { return strings.ReplaceAll(body, "HELLO", hello) }
	tests := []struct {
		name        string
		method, url string
		ctype, body string
		status      int
		code        verdict.Code
		field       string
	}{
		{"module too large", "POST", "/v1/modules", "application/wasm", string(big), 413, verdict.TooLarge, ""},
		{"module invalid", "POST", "/v1/modules", "application/wasm", string(garbage), 400, verdict.InvalidArgument, "module"},
		{"module wrong content type", "POST", "/v1/modules", "text/plain", "x", 400, verdict.InvalidArgument, "Content-Type"},
		{"module digest malformed", "GET", "/v1/modules/NOTHEX", "", "", 400, verdict.InvalidArgument, "digest"},
		{"module missing", "GET", "/v1/modules/" + strings.Repeat("ab", 32), "", "", 404, verdict.NotFound, "digest"},
		{"module delete missing", "DELETE", "/v1/modules/" + strings.Repeat("cd", 32), "", "", 404, verdict.NotFound, "digest"},
		{"submit malformed JSON", "POST", "/v1/tasks", "application/json", `{"module":`, 400, verdict.InvalidArgument, ""},
		{"submit unknown field", "POST", "/v1/tasks", "application/json", sub(`{"module":"HELLO","limitz":{}}`), 400, verdict.InvalidArgument, "limitz"},
		{"submit unknown nested field", "POST", "/v1/tasks", "application/json", sub(`{"module":"HELLO","limits":{"memry":"1Gi"}}`), 400, verdict.InvalidArgument, "limits.memry"},
		{"submit wrong type", "POST", "/v1/tasks", "application/json", sub(`{"module":"HELLO","args":"a"}`), 400, verdict.InvalidArgument, "args"},
		{"submit trailing data", "POST", "/v1/tasks", "application/json", sub(`{"module":"HELLO"} {}`), 400, verdict.InvalidArgument, ""},
		{"submit memory zero", "POST", "/v1/tasks", "application/json", sub(`{"module":"HELLO","limits":{"memory":"0"}}`), 400, verdict.InvalidArgument, "limits.memory"},
		{"submit memory bad", "POST", "/v1/tasks", "application/json", sub(`{"module":"HELLO","limits":{"memory":"64Q"}}`), 400, verdict.InvalidArgument, "limits.memory"},
		{"submit memory over the budget", "POST", "/v1/tasks", "application/json", sub(`{"module":"HELLO","limits":{"memory":"1Ti"}}`), 400, verdict.InvalidArgument, "limits.memory"},
		{"submit cpus over the host", "POST", "/v1/tasks", "application/json", sub(`{"module":"HELLO","limits":{"cpus":4096}}`), 400, verdict.InvalidArgument, "limits.cpus"},
		{"submit timeout bad", "POST", "/v1/tasks", "application/json", sub(`{"module":"HELLO","limits":{"timeout":"soon"}}`), 400, verdict.InvalidArgument, "limits.timeout"},
		{"submit pids too few", "POST", "/v1/tasks", "application/json", sub(`{"module":"HELLO","limits":{"pids":2}}`), 400, verdict.InvalidArgument, "limits.pids"},
		{"submit attempts too many", "POST", "/v1/tasks", "application/json", sub(`{"module":"HELLO","retry":{"max_attempts":99}}`), 400, verdict.InvalidArgument, "retry.max_attempts"},
		{"submit retry on ok", "POST", "/v1/tasks", "application/json", sub(`{"module":"HELLO","retry":{"retry_on":["ok"]}}`), 400, verdict.InvalidArgument, "retry.retry_on[0]"},
		{"submit priority bad", "POST", "/v1/tasks", "application/json", sub(`{"module":"HELLO","priority":"urgent"}`), 400, verdict.InvalidArgument, "priority"},
		{"submit env bad", "POST", "/v1/tasks", "application/json", sub(`{"module":"HELLO","env":["NOEQUALS"]}`), 400, verdict.InvalidArgument, "env[0]"},
		{"submit module not a digest", "POST", "/v1/tasks", "application/json", `{"module":"hello.wasm"}`, 400, verdict.InvalidArgument, "module"},
		{"submit module missing", "POST", "/v1/tasks", "application/json", `{"module":"` + strings.Repeat("ef", 32) + `"}`, 404, verdict.NotFound, "module"},
		{"submit queue full", "POST", "/v1/tasks", "application/json", sub(`{"module":"HELLO"}`), 429, verdict.QueueFull, ""},
		{"batch too many", "POST", "/v1/tasks:batch", "application/json", `{"tasks":[` + strings.Repeat(`{},`, task.MaxBatch) + `{}]}`, 413, verdict.TooLarge, "tasks"},
		{"list bad state", "GET", "/v1/tasks?state=sleeping", "", "", 400, verdict.InvalidArgument, "state"},
		{"list bad outcome", "GET", "/v1/tasks?outcome=won", "", "", 400, verdict.InvalidArgument, "outcome"},
		{"list bad since", "GET", "/v1/tasks?since=yesterday", "", "", 400, verdict.InvalidArgument, "since"},
		{"list bad limit", "GET", "/v1/tasks?limit=100000", "", "", 400, verdict.InvalidArgument, "limit"},
		{"list unknown parameter", "GET", "/v1/tasks?colour=red", "", "", 400, verdict.InvalidArgument, "colour"},
		{"get missing", "GET", "/v1/tasks/nosuchtask", "", "", 404, verdict.NotFound, "id"},
		{"verdict missing", "GET", "/v1/tasks/nosuchtask/verdict", "", "", 404, verdict.NotFound, "id"},
		{"cancel missing", "POST", "/v1/tasks/nosuchtask/cancel", "", "", 404, verdict.NotFound, "id"},
		{"wait bad timeout", "GET", "/v1/tasks/nosuchtask/wait?timeout=forever", "", "", 400, verdict.InvalidArgument, "timeout"},
		{"wrong method", "PUT", "/v1/tasks", "", "", 405, verdict.InvalidArgument, "method"},
		{"no such route", "GET", "/v2/tasks", "", "", 404, verdict.NotFound, "path"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, "http://agentboxd"+tt.url, strings.NewReader(tt.body))
			if tt.ctype != "" {
				req.Header.Set("Content-Type", tt.ctype)
			}
			resp, err := d.http().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			raw, _ := io.ReadAll(resp.Body)
			var body verdict.ErrorBody
			dec := json.NewDecoder(bytes.NewReader(raw))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&body); err != nil || body.Error == nil {
				t.Fatalf("status %d, body %s: not the error shape (%v)", resp.StatusCode, raw, err)
			}
			e := body.Error
			if resp.StatusCode != tt.status || e.Code != tt.code || (tt.field != "" && e.Field != tt.field) || e.Message == "" {
				t.Errorf("status %d code %s field %q message %q; want %d %s field %q", resp.StatusCode, e.Code, e.Field, e.Message, tt.status, tt.code, tt.field)
			}
			if tt.status == 429 && resp.Header.Get("Retry-After") == "" {
				t.Error("429 without Retry-After")
			}
		})
	}
}
