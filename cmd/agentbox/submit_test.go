package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/agentbox/agentbox/outcome"
	"github.com/agentbox/agentbox/supervisor/task"
	"github.com/agentbox/agentbox/verdict"
)

// TestSubmitWaitExitCodes: submit --wait prints and exits as agentbox run: the guest's
// output on ours, the outcome line for a verdict other than ok, run's exit code; with
// --json exactly run's verdict object.
func TestSubmitWaitExitCodes(t *testing.T) {
	d := newFakeDaemon()
	host := d.start(t)
	m := wasmFile(t, t.TempDir(), "m.wasm", "\x00asm good")
	tests := []struct {
		guest    string
		code     int
		verdictL string // the "agentbox: ..." line on stderr; "" for ok
	}{
		{"ok", 0, ""},
		{"exit:3", 3, "agentbox: exit: the guest did exit:3"},
		{"exit:300", 255, "agentbox: exit:"},
		{"trap", exitTrap, "agentbox: trap: the guest did trap"},
		{"memory_limit", exitMemoryLimit, "agentbox: memory_limit:"},
		{"timeout", exitTimeout, "agentbox: timeout:"},
		{"cancelled", exitCancelled, "agentbox: cancelled:"},
		{"sandbox_error", exitSandboxError, "agentbox: sandbox_error:"},
	}
	for _, tt := range tests {
		t.Run(tt.guest, func(t *testing.T) {
			r := abcli("submit", "--host", host, "--wait", m, tt.guest)
			if r.code != tt.code {
				t.Fatalf("exit %d, want %d; stderr %q", r.code, tt.code, r.stderr)
			}
			if r.stdout != "out:"+tt.guest+"\n" || !strings.HasPrefix(r.stderr, "err:"+tt.guest+"\n") {
				t.Errorf("stdout %q stderr %q: want the guest's own", r.stdout, r.stderr)
			}
			if !strings.Contains(r.stderr, tt.verdictL) || (tt.verdictL == "" && strings.Contains(r.stderr, "agentbox:")) {
				t.Errorf("stderr %q, want the line %q", r.stderr, tt.verdictL)
			}
			j := abcli("submit", "--host", host, "--wait", "--json", m, tt.guest)
			if want := string(encodeJSON(scripted([]string{tt.guest}))); j.code != tt.code || j.stdout != want {
				t.Errorf("--json: exit %d, stdout\n%s\nwant exit %d and run's object\n%s", j.code, j.stdout, tt.code, want)
			}
		})
	}
}

// TestSubmitRequest: what the flags put in the request. A limit left unset is left out,
// so that the daemon's defaults apply; one set is passed in the flag's own form.
func TestSubmitRequest(t *testing.T) {
	d := newFakeDaemon()
	host := d.start(t)
	dir := t.TempDir()
	m := wasmFile(t, dir, "m.wasm", "\x00asm good")
	in := wasmFile(t, dir, "in.txt", "hello stdin")
	digest := digestOf([]byte("\x00asm good"))
	tests := []struct {
		name   string
		flags  []string
		module string
		args   []string
		want   task.SubmitRequest
	}{
		{name: "no flags: daemon defaults", module: m, want: task.SubmitRequest{Module: digest}},
		{name: "limits as typed", flags: []string{"--memory", "64Mi", "--cpus", "0.5", "--pids", "16", "--timeout", "90s",
			"--cpu-time", "0s", "--output-limit", "2Mi", "--clock-resolution", "10ms"}, module: m,
			want: task.SubmitRequest{Module: digest, Limits: task.Limits{Memory: "64Mi", CPUs: 0.5, Pids: 16, Timeout: "1m30s",
				CPUTime: "0s", OutputLimit: "2Mi", ClockResolution: "10ms"}}},
		{name: "the rest", flags: []string{"--env", "A=1", "--env", "B=2", "--label", "team=x", "--priority", "high",
			"--max-attempts", "5", "--idempotency-key", "k1", "--stdin", in}, module: m, args: []string{"--", "a", "--json"},
			want: task.SubmitRequest{Module: digest, Args: []string{"a", "--json"}, Env: []string{"A=1", "B=2"},
				Labels: map[string]string{"team": "x"}, Priority: task.High, Retry: task.RetryPolicy{MaxAttempts: 5},
				IdempotencyKey: "k1", Stdin: []byte("hello stdin")}},
		{name: "by digest, no push", module: "sha256:" + digest, want: task.SubmitRequest{Module: digest}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d.seen()
			args := append(append(append([]string{"submit", "--host", host}, tt.flags...), tt.module), tt.args...)
			r := abcli(args...)
			if r.code != 0 || !strings.HasPrefix(r.stdout, "t") {
				t.Fatalf("exit %d, stdout %q, stderr %q; want the task's ID", r.code, r.stdout, r.stderr)
			}
			reqs, pushed := d.seen()
			if len(reqs) != 1 || !reflect.DeepEqual(reqs[0], tt.want) {
				got, _ := json.Marshal(reqs)
				want, _ := json.Marshal(tt.want)
				t.Errorf("requests %s\nwant    [%s]", got, want)
			}
			if (pushed == 1) != strings.HasSuffix(tt.module, ".wasm") {
				t.Errorf("%d pushes for MODULE %s", pushed, tt.module)
			}
		})
	}
}

func TestSubmitRefusals(t *testing.T) {
	d := newFakeDaemon()
	host := d.start(t)
	dir := t.TempDir()
	m := wasmFile(t, dir, "m.wasm", "\x00asm good")
	bad := wasmFile(t, dir, "bad.wasm", "bad")
	big := wasmFile(t, dir, "big", strings.Repeat("x", task.MaxStdinBytes+1))
	tests := []struct {
		name         string
		args         []string
		code         verdict.Code
		field, value string
		stderr       string
	}{
		{name: "daemon's field named as the flag", args: []string{"--memory", "0", m}, code: verdict.InvalidArgument,
			field: "--memory", value: "0", stderr: `--memory "0": must be more than 0`},
		{name: "invalid module refused at push", args: []string{bad}, code: verdict.InvalidArgument,
			field: "MODULE", value: bad, stderr: "magic header"},
		{name: "unknown digest", args: []string{strings.Repeat("b", 64)}, code: verdict.InvalidArgument,
			field: "MODULE", stderr: "no such module"},
		{name: "missing module file", args: []string{filepath.Join(dir, "none.wasm")}, code: verdict.InvalidArgument,
			field: "MODULE", stderr: "cannot read module"},
		{name: "a device", args: []string{"/dev/zero"}, code: verdict.InvalidArgument, field: "MODULE", stderr: "not a regular file"},
		{name: "missing MODULE", args: nil, code: verdict.InvalidArgument, field: "MODULE", stderr: "missing MODULE"},
		{name: "zero cpus", args: []string{"--cpus", "0", m}, code: verdict.InvalidArgument, field: "--cpus", value: "0"},
		{name: "env without =", args: []string{"--env", "NOPE", m}, code: verdict.InvalidArgument, field: "--env", value: "NOPE"},
		{name: "label without =", args: []string{"--label", "team", m}, code: verdict.InvalidArgument, field: "--label", value: "team"},
		{name: "stdin too large", args: []string{"--stdin", big, m}, code: verdict.TooLarge, field: "--stdin", stderr: "1Mi"},
		{name: "idempotency key on many", args: []string{"--idempotency-key", "k", dir}, code: verdict.InvalidArgument,
			field: "--idempotency-key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := abcli(append([]string{"submit", "--host", host, "--json"}, tt.args...)...)
			if r.code != exitUsage {
				t.Fatalf("exit %d, want 2; stderr %q", r.code, r.stderr)
			}
			e := errorOf(t, r)
			if e.Code != tt.code || e.Field != tt.field || (tt.value != "" && e.Value != tt.value) || !strings.Contains(r.stderr, tt.stderr) {
				t.Errorf("error %+v, stderr %q; want code %s field %q value %q saying %q", e, r.stderr, tt.code, tt.field, tt.value, tt.stderr)
			}
		})
	}
}

func TestSubmitRetriesQueueFull(t *testing.T) {
	d := newFakeDaemon()
	host := d.start(t)
	m := wasmFile(t, t.TempDir(), "m.wasm", "\x00asm good")
	d.set(func(d *fakeDaemon) { d.queueFull = 2 })
	r := abcli("submit", "--host", host, m)
	if r.code != 0 || r.stdout != "t1\n" {
		t.Fatalf("exit %d, stdout %q, stderr %q; want t1 once the queue had room", r.code, r.stdout, r.stderr)
	}
}

// TestSubmitMany: a directory and a batch file, each task's line as it settles, the exit
// code of the first task that was not ok, and the JSON of the whole.
func TestSubmitMany(t *testing.T) {
	d := newFakeDaemon()
	host := d.start(t)
	dir := t.TempDir()
	mods := filepath.Join(dir, "mods")
	os.Mkdir(mods, 0o755)
	wasmFile(t, mods, "a.wasm", "\x00asm a")
	wasmFile(t, mods, "b.wasm", "bad")
	wasmFile(t, mods, "c.wasm", "\x00asm c")
	wasmFile(t, mods, "notes.txt", "not a module")
	digestA := digestOf([]byte("\x00asm a"))
	batch := wasmFile(t, dir, "tasks.jsonl", strings.Join([]string{
		`{"module": "mods/a.wasm", "args": ["ok"], "labels": {"n": "1"}}`,
		``,
		`{"module": "` + digestA + `", "args": ["trap"], "limits": {"memory": "64Mi"}}`,
		`{"module": "mods/c.wasm", "args": ["exit:4"]}`,
	}, "\n"))
	typo := wasmFile(t, dir, "typo.jsonl", `{"module": "mods/a.wasm"}`+"\n"+`{"modul": "mods/a.wasm"}`)

	t.Run("directory, --wait, lines", func(t *testing.T) {
		r := abcli("submit", "--host", host, "--wait", mods+"/", "ok")
		if r.code != exitUsage {
			t.Errorf("exit %d, want 2 for the refused b.wasm", r.code)
		}
		for _, want := range []string{"a.wasm\tt", "\tok\n", "b.wasm\t-\trefused\tmodule " + filepath.Join(mods, "b.wasm"), "c.wasm\tt"} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("stdout lacks %q:\n%s", want, r.stdout)
			}
		}
		if !strings.Contains(r.stderr, "agentbox: 3 tasks: 2 ok, 1 refused") {
			t.Errorf("stderr %q, want the tally", r.stderr)
		}
	})
	t.Run("batch, --wait, -o json", func(t *testing.T) {
		d.seen()
		r := abcli("submit", "--host", host, "--wait", "--json", "--label", "run=7", "--timeout", "5s", "--batch", batch)
		if r.code != exitTrap {
			t.Errorf("exit %d, want %d (the first task not ok is a trap)", r.code, exitTrap)
		}
		var got manyResults
		oneJSON(t, r.stdout, &got)
		want := []outcome.Outcome{outcome.OK, outcome.Trap, outcome.Exit}
		if len(got.Results) != 3 {
			t.Fatalf("results %+v", got.Results)
		}
		for i, res := range got.Results {
			if res.Task == nil || res.Task.Outcome() != want[i] {
				t.Errorf("result %d (%s) = %+v, want %s", i, res.Name, res, want[i])
			}
		}
		if !strings.HasPrefix(got.Results[2].Name, batch+":4 ") {
			t.Errorf("name %q, want FILE:LINE of the line", got.Results[2].Name)
		}
		reqs, _ := d.seen()
		first, second := reqs[0], reqs[1]
		if first.Labels["run"] != "7" || first.Labels["n"] != "1" || first.Limits.Timeout != "5s" || second.Limits.Memory != "64Mi" {
			t.Errorf("flags did not fill in what the lines left out: %+v, %+v", first, second)
		}
	})
	t.Run("batch, queue full entries resubmitted, -o jsonl", func(t *testing.T) {
		d.set(func(d *fakeDaemon) { d.queueFull = 2 })
		r := abcli("submit", "--host", host, "-o", "jsonl", "--batch", batch)
		if r.code != 0 {
			t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
		}
		lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
		if len(lines) != 3 {
			t.Fatalf("%d lines, want 3:\n%s", len(lines), r.stdout)
		}
		for _, l := range lines {
			var res manyResult
			if err := json.Unmarshal([]byte(l), &res); err != nil || res.Task == nil || res.Error != nil {
				t.Errorf("line %q: %v, want an accepted task", l, err)
			}
		}
	})
	t.Run("a misspelt field refuses the file", func(t *testing.T) {
		d.seen()
		r := abcli("submit", "--host", host, "--json", "--batch", typo)
		e := errorOf(t, r)
		if r.code != exitUsage || e.Field != "--batch" || e.Value != typo+":2" || !strings.Contains(e.Message, `unknown field "modul"`) {
			t.Errorf("exit %d, error %+v", r.code, e)
		}
		if reqs, _ := d.seen(); len(reqs) != 0 {
			t.Errorf("%d tasks submitted from a refused file", len(reqs))
		}
	})
}
