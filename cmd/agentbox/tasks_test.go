package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/agentbox/agentbox/supervisor/task"
	"github.com/agentbox/agentbox/verdict"
)

// TestTaskCommands: get, wait, cancel, ls, logs and events against the fake daemon, for
// people and for scripts.
func TestTaskCommands(t *testing.T) {
	d := newFakeDaemon()
	host := d.start(t)
	m := wasmFile(t, t.TempDir(), "m.wasm", "\x00asm good")
	for _, guest := range []string{"ok", "trap", "exit:9"} {
		if r := abcli("submit", "--host", host, "--label", "g="+guest, m, guest); r.code != 0 {
			t.Fatalf("submit: exit %d, %s", r.code, r.stderr)
		}
	}
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout []string // each must appear
		stderr []string
		check  func(t *testing.T, stdout string)
	}{
		{name: "get, table", args: []string{"get", "t2"}, stdout: []string{"ID:", "t2", "State:", "queued", "g=trap"}},
		{name: "get, json", args: []string{"get", "-o", "json", "t2"}, check: func(t *testing.T, out string) {
			var tk task.Task
			oneJSON(t, out, &tk)
			if tk.ID != "t2" || tk.Labels["g"] != "trap" {
				t.Errorf("task %+v", tk)
			}
		}},
		{name: "wait exits as run", args: []string{"wait", "t2"}, code: exitTrap, stdout: []string{"out:trap"},
			stderr: []string{"err:trap", "agentbox: trap: the guest did trap"}},
		{name: "wait, guest exit code", args: []string{"wait", "t3"}, code: 9},
		{name: "wait, json", args: []string{"wait", "--json", "t1"}, check: func(t *testing.T, out string) {
			if want := string(encodeJSON(scripted([]string{"ok"}))); out != want {
				t.Errorf("stdout\n%s\nwant run's verdict object\n%s", out, want)
			}
		}},
		{name: "get after the wait", args: []string{"get", "t2"}, stdout: []string{"Outcome:", "trap", "Message:", "the guest did trap"}},
		{name: "logs", args: []string{"logs", "t2"}, stdout: []string{"out:trap"}, stderr: []string{"err:trap"}},
		{name: "ls, table", args: []string{"ls"}, stdout: []string{"ID", "STATE", "t3", "exit", "t2", "trap", "t1", "ok", "g=ok"}},
		{name: "ls, jsonl", args: []string{"ls", "-o", "jsonl"}, check: func(t *testing.T, out string) {
			lines := strings.Split(strings.TrimSpace(out), "\n")
			if len(lines) != 3 {
				t.Fatalf("%d lines:\n%s", len(lines), out)
			}
			var tk task.Task
			if err := json.Unmarshal([]byte(lines[0]), &tk); err != nil || tk.ID != "t3" {
				t.Errorf("first line %q (%v): want t3, newest first", lines[0], err)
			}
		}},
		{name: "cancel", args: []string{"cancel", "t1"}, stdout: []string{"t1\tok"}},
		{name: "logs of a task not final", args: []string{"logs", "--json", "t9"}, code: exitUsage, check: func(t *testing.T, out string) {
			var body verdict.ErrorBody
			oneJSON(t, out, &body)
			if body.Error == nil || body.Error.Code != verdict.NotFound {
				t.Errorf("error %+v", body.Error)
			}
		}},
		{name: "events until the daemon closes the stream", args: []string{"events"}, code: exitUsage,
			stdout: []string{"t1  queued\n", "t1  running\n"}, stderr: []string{"closed the event stream"}},
		{name: "events, jsonl", args: []string{"events", "-o", "jsonl"}, code: exitUsage, check: func(t *testing.T, out string) {
			var e task.Event
			if err := json.Unmarshal([]byte(strings.Split(out, "\n")[0]), &e); err != nil || e.Task.ID != "t1" {
				t.Errorf("first line of %q: %v", out, err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := abcli(append([]string{tt.args[0], "--host", host}, tt.args[1:]...)...)
			if r.code != tt.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", r.code, tt.code, r.stdout, r.stderr)
			}
			for _, s := range tt.stdout {
				if !strings.Contains(r.stdout, s) {
					t.Errorf("stdout lacks %q:\n%s", s, r.stdout)
				}
			}
			for _, s := range tt.stderr {
				if !strings.Contains(r.stderr, s) {
					t.Errorf("stderr lacks %q:\n%s", s, r.stderr)
				}
			}
			if tt.check != nil {
				tt.check(t, r.stdout)
			}
		})
	}
}

func TestTaskListPages(t *testing.T) {
	d := newFakeDaemon()
	host := d.start(t)
	m := wasmFile(t, t.TempDir(), "m.wasm", "\x00asm good")
	for range 5 {
		abcli("submit", "--host", host, m)
	}
	d.set(func(d *fakeDaemon) { d.pageSize = 2 })
	r := abcli("ls", "--host", host, "-o", "json")
	var p task.Page
	oneJSON(t, r.stdout, &p)
	if len(p.Tasks) != 2 || p.NextCursor == "" {
		t.Errorf("one page: %d tasks, cursor %q; want 2 and a cursor", len(p.Tasks), p.NextCursor)
	}
	r = abcli("ls", "--host", host, "-o", "json", "--all")
	p = task.Page{}
	oneJSON(t, r.stdout, &p)
	if len(p.Tasks) != 5 || p.NextCursor != "" || p.Tasks[0].ID != "t5" || p.Tasks[4].ID != "t1" {
		t.Errorf("--all: %d tasks, cursor %q; want all 5, newest first", len(p.Tasks), p.NextCursor)
	}
	r = abcli("ls", "--host", host, "--state", "done", "--outcome", "trap", "--label", "a=1", "--since", "2025-01-02T03:04:05Z", "--limit", "7")
	var query string
	d.set(func(d *fakeDaemon) { query = d.lastQuery })
	if r.code != 0 || query != "label=a%3D1&limit=7&outcome=trap&since=2025-01-02T03%3A04%3A05Z&state=done" {
		t.Errorf("exit %d, query %q", r.code, query)
	}
	if !strings.Contains(r.stderr, "more tasks match: --all lists them all") {
		t.Errorf("stderr %q, want a note that the page is not all", r.stderr)
	}
}
