package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentbox/agentbox/outcome"
	"github.com/agentbox/agentbox/supervisor/task"
	"github.com/agentbox/agentbox/verdict"
)

// fakeDaemon is just enough of agentboxd's /v1 API, in memory, to drive the client
// commands: the real daemon's own tests cover the daemon. A task's verdict is scripted by
// its first argument: "ok", "exit:N", or any other outcome's name; a module whose bytes
// are "bad" is refused as invalid.
type fakeDaemon struct {
	mu        sync.Mutex
	modules   map[string]task.Module
	tasks     map[string]*task.Task
	order     []string // task ids, oldest first
	requests  []task.SubmitRequest
	polls     map[string]int // waits answered per task
	pushes    int
	queueFull int // answer 429 to this many submits first
	pageSize  int
	lastQuery string
}

// seen returns the submits and pushes so far, and forgets them.
func (d *fakeDaemon) seen() ([]task.SubmitRequest, int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	reqs, pushes := d.requests, d.pushes
	d.requests, d.pushes = nil, 0
	return reqs, pushes
}

// set changes the fake's behaviour under its lock.
func (d *fakeDaemon) set(f func(d *fakeDaemon)) {
	d.mu.Lock()
	defer d.mu.Unlock()
	f(d)
}

func newFakeDaemon() *fakeDaemon {
	return &fakeDaemon{modules: map[string]task.Module{}, tasks: map[string]*task.Task{}, polls: map[string]int{}, pageSize: 100}
}

// start serves d on a unix socket in a short temporary directory and returns its host.
func (d *fakeDaemon) start(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "abcmd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "d.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(d.mux())
	srv.Listener.Close()
	srv.Listener = l
	srv.Start()
	t.Cleanup(srv.Close)
	return "unix://" + sock
}

func (d *fakeDaemon) mux() *http.ServeMux {
	m := http.NewServeMux()
	m.HandleFunc("POST /v1/modules", d.pushModule)
	m.HandleFunc("GET /v1/modules", func(w http.ResponseWriter, r *http.Request) {
		d.mu.Lock()
		defer d.mu.Unlock()
		l := task.ModuleList{Modules: []task.Module{}}
		for _, mod := range d.modules {
			l.Modules = append(l.Modules, mod)
		}
		reply(w, 200, l)
	})
	m.HandleFunc("DELETE /v1/modules/{digest}", func(w http.ResponseWriter, r *http.Request) {
		d.mu.Lock()
		defer d.mu.Unlock()
		if _, ok := d.modules[r.PathValue("digest")]; !ok {
			refuse(w, verdict.NotFound, "digest", r.PathValue("digest"), "no module "+r.PathValue("digest"))
			return
		}
		delete(d.modules, r.PathValue("digest"))
		w.WriteHeader(204)
	})
	m.HandleFunc("POST /v1/tasks", d.submit)
	m.HandleFunc("POST /v1/tasks:batch", d.batch)
	m.HandleFunc("GET /v1/tasks", d.list)
	m.HandleFunc("GET /v1/tasks/{id}", d.withTask(func(w http.ResponseWriter, tk *task.Task) { reply(w, 200, tk) }))
	m.HandleFunc("GET /v1/tasks/{id}/wait", d.withTask(d.wait))
	m.HandleFunc("GET /v1/tasks/{id}/verdict", d.withTask(func(w http.ResponseWriter, tk *task.Task) {
		if !tk.Final() {
			refuse(w, verdict.InvalidArgument, "id", tk.ID, "task "+tk.ID+" is not final")
			return
		}
		reply(w, 200, scripted(tk.Args))
	}))
	m.HandleFunc("POST /v1/tasks/{id}/cancel", d.withTask(func(w http.ResponseWriter, tk *task.Task) {
		tk.CancelRequested = true
		reply(w, 200, tk)
	}))
	m.HandleFunc("GET /v1/events", d.events)
	return m
}

func reply(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func refuse(w http.ResponseWriter, code verdict.Code, field, value, msg string) {
	reply(w, code.HTTPStatus(), verdict.ErrorBody{Error: &verdict.Error{Code: code, Field: field, Value: value, Message: msg}})
}

func digestOf(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func (d *fakeDaemon) pushModule(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	d.mu.Lock()
	defer d.mu.Unlock()
	d.pushes++
	if string(b) == "bad" {
		refuse(w, verdict.InvalidArgument, "module", "", "invalid module: magic header not detected")
		return
	}
	m := task.Module{Digest: digestOf(b), Tenant: "t", Bytes: uint64(len(b)), CreatedAt: time.Unix(1700000000, 0)}
	d.modules[m.Digest] = m
	reply(w, 201, m)
}

// accept records one submit; it returns the task, or the error that refuses it.
func (d *fakeDaemon) accept(req task.SubmitRequest) (*task.Task, *verdict.Error) {
	d.requests = append(d.requests, req)
	if _, ok := d.modules[req.Module]; !ok {
		return nil, &verdict.Error{Code: verdict.InvalidArgument, Field: "module", Value: req.Module, Message: "module " + req.Module + ": no such module"}
	}
	if req.Limits.Memory == "0" {
		return nil, &verdict.Error{Code: verdict.InvalidArgument, Field: "limits.memory", Value: "0", Message: `limits.memory "0": must be more than 0`}
	}
	if d.queueFull > 0 {
		d.queueFull--
		return nil, &verdict.Error{Code: verdict.QueueFull, Message: "the queue is full"}
	}
	id := "t" + strconv.Itoa(len(d.order)+1)
	tk := &task.Task{ID: id, State: task.Queued, Module: req.Module, Args: req.Args, Labels: req.Labels,
		CreatedAt: time.Unix(1700000000+int64(len(d.order)), 0)}
	d.tasks[id] = tk
	d.order = append(d.order, id)
	return tk, nil
}

func (d *fakeDaemon) submit(w http.ResponseWriter, r *http.Request) {
	var req task.SubmitRequest
	json.NewDecoder(r.Body).Decode(&req)
	d.mu.Lock()
	defer d.mu.Unlock()
	tk, e := d.accept(req)
	if e != nil {
		if e.Code == verdict.QueueFull {
			w.Header().Set("Retry-After", "0")
		}
		reply(w, e.Code.HTTPStatus(), verdict.ErrorBody{Error: e})
		return
	}
	reply(w, 202, tk)
}

func (d *fakeDaemon) batch(w http.ResponseWriter, r *http.Request) {
	var req task.BatchRequest
	json.NewDecoder(r.Body).Decode(&req)
	d.mu.Lock()
	defer d.mu.Unlock()
	var resp task.BatchResponse
	for _, one := range req.Tasks {
		tk, e := d.accept(one)
		resp.Results = append(resp.Results, task.BatchResult{Task: tk, Error: e})
	}
	reply(w, 200, resp)
}

// list pages newest first; the cursor is the index to start at.
func (d *fakeDaemon) list(w http.ResponseWriter, r *http.Request) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.lastQuery = r.URL.RawQuery
	start, _ := strconv.Atoi(r.URL.Query().Get("cursor"))
	var p task.Page
	for i := len(d.order) - 1 - start; i >= 0 && len(p.Tasks) < d.pageSize; i-- {
		p.Tasks = append(p.Tasks, *d.tasks[d.order[i]])
	}
	if next := start + len(p.Tasks); next < len(d.order) {
		p.NextCursor = strconv.Itoa(next)
	}
	reply(w, 200, p)
}

func (d *fakeDaemon) withTask(h func(http.ResponseWriter, *task.Task)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		d.mu.Lock()
		defer d.mu.Unlock()
		tk, ok := d.tasks[r.PathValue("id")]
		if !ok {
			refuse(w, verdict.NotFound, "id", r.PathValue("id"), "no task "+r.PathValue("id"))
			return
		}
		h(w, tk)
	}
}

// wait answers "running" to a task's first poll and the scripted verdict to the next.
func (d *fakeDaemon) wait(w http.ResponseWriter, tk *task.Task) {
	d.polls[tk.ID]++
	if d.polls[tk.ID] == 1 {
		tk.State = task.Running
	} else {
		v := scripted(tk.Args).WithoutOutput()
		tk.State, tk.Verdict = task.Done, &v
	}
	reply(w, 200, tk)
}

func (d *fakeDaemon) events(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(200)
	fmt.Fprint(w, ": heartbeat\n\n")
	for _, st := range []task.State{task.Queued, task.Running} {
		b, _ := json.Marshal(task.Event{Type: "task", Task: task.Task{ID: "t1", State: st, UpdatedAt: time.Unix(1700000000, 0)}})
		fmt.Fprintf(w, "event: task\ndata: %s\n\n", b)
	}
}

// scripted is the verdict the guest args ask for.
func scripted(args []string) verdict.Verdict {
	want := "ok"
	if len(args) > 0 {
		want = args[0]
	}
	stdout, stderr := "out:"+want+"\n", "err:"+want+"\n"
	v := verdict.Verdict{Outcome: outcome.Outcome(want), Message: "the guest did " + want, Stdout: &stdout, Stderr: &stderr,
		Limits: verdict.Limits{Memory: "256Mi", OutputLimit: "1Mi"}, Warnings: []string{}}
	if name, n, ok := strings.Cut(want, ":"); ok {
		code, _ := strconv.ParseUint(n, 10, 32)
		c := uint32(code)
		v.Outcome, v.ExitCode = outcome.Outcome(name), &c
	}
	if v.Outcome == outcome.OK {
		zero := uint32(0)
		v.ExitCode = &zero
	}
	return v
}

// abcli runs the CLI in this process, as main does.
func abcli(args ...string) cliResult {
	var stdout, stderr bytes.Buffer
	code := execute(args, &stdout, &stderr)
	return cliResult{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// wasmFile writes a module file with content b.
func wasmFile(t *testing.T, dir, name, b string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(b), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// errorOf decodes the one JSON error object of a --json run.
func errorOf(t *testing.T, r cliResult) *verdict.Error {
	t.Helper()
	var body verdict.ErrorBody
	oneJSON(t, r.stdout, &body)
	if body.Error == nil {
		t.Fatalf("no error object in %q", r.stdout)
	}
	return body.Error
}

func TestClientFlagsAndErrors(t *testing.T) {
	d := newFakeDaemon()
	host := d.start(t)
	dir := t.TempDir()
	nobody := "unix://" + filepath.Join(dir, "nobody.sock")
	tests := []struct {
		name         string
		args         []string
		code         verdict.Code
		field, value string
		stderr       []string
		noJSON       bool // the format itself is what is wrong: the error is told on stderr only
	}{
		{name: "no daemon", args: []string{"get", "--host", nobody, "--json", "t1"}, code: verdict.Unsupported,
			field: "--host", value: nobody, stderr: []string{nobody, "is agentboxd running", "systemctl start agentboxd"}},
		{name: "http to another host", args: []string{"ls", "--host", "http://10.1.2.3:80", "--json"}, code: verdict.InvalidArgument,
			field: "--host", value: "http://10.1.2.3:80", stderr: []string{"in clear", "https://"}},
		{name: "bad -o", args: []string{"ls", "--host", host, "-o", "yaml"}, code: verdict.InvalidArgument,
			stderr: []string{`-o "yaml"`, "table, json or jsonl"}, noJSON: true},
		{name: "not found, -o json", args: []string{"get", "--host", host, "-o", "json", "t9"}, code: verdict.NotFound,
			field: "id", value: "t9", stderr: []string{"no task t9"}},
		{name: "missing ID", args: []string{"wait", "--host", host, "--json"}, code: verdict.InvalidArgument,
			field: "ID", stderr: []string{"want exactly one ID", "agentbox wait"}},
		{name: "empty token file", args: []string{"ls", "--host", host, "--json", "--token-file", wasmFile(t, dir, "tok", "\n")},
			code: verdict.InvalidArgument, field: "--token-file", stderr: []string{"is empty"}},
		{name: "bad --state", args: []string{"ls", "--host", host, "--json", "--state", "sleeping"}, code: verdict.InvalidArgument,
			field: "--state", value: "sleeping", stderr: []string{"queued running done"}},
		{name: "bad --since", args: []string{"ls", "--host", host, "--json", "--since", "yesterday"}, code: verdict.InvalidArgument,
			field: "--since", value: "yesterday", stderr: []string{"1h"}},
		{name: "module rm of nothing", args: []string{"module", "rm", "--host", host, "--json", strings.Repeat("a", 64)},
			code: verdict.NotFound, field: "digest", stderr: []string{"no module"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := abcli(tt.args...)
			if r.code != exitUsage {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", r.code, exitUsage, r.stdout, r.stderr)
			}
			for _, s := range tt.stderr {
				if !strings.Contains(r.stderr, s) {
					t.Errorf("stderr %q does not say %q", r.stderr, s)
				}
			}
			if tt.noJSON {
				if r.stdout != "" {
					t.Errorf("stdout %q, want nothing", r.stdout)
				}
				return
			}
			e := errorOf(t, r)
			if e.Code != tt.code || e.Field != tt.field || (tt.value != "" && e.Value != tt.value) {
				t.Errorf("error %+v, want code %s field %q value %q", e, tt.code, tt.field, tt.value)
			}
		})
	}
}

func TestClientHostFromEnvironment(t *testing.T) {
	d := newFakeDaemon()
	t.Setenv("AGENTBOX_HOST", d.start(t))
	t.Setenv("AGENTBOX_TOKEN", "")
	if r := abcli("module", "ls", "-o", "json"); r.code != 0 {
		t.Fatalf("module ls with AGENTBOX_HOST: exit %d, %s", r.code, r.stderr)
	}
}
