package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/agentbox/agentbox/outcome"
	"github.com/agentbox/agentbox/supervisor/task"
	"github.com/agentbox/agentbox/verdict"
)

func final(id string, o outcome.Outcome) *task.Task {
	return &task.Task{ID: id, State: task.Done, Verdict: &verdict.Verdict{Outcome: o, Message: "it did " + string(o)}}
}

var progressResults = []manyResult{
	{Name: "a.wasm", Task: final("t1", outcome.OK)},
	{Name: "b.wasm", Error: &verdict.Error{Code: verdict.InvalidArgument, Message: "invalid module"}},
	{Name: "c.wasm", Task: final("t2", outcome.Trap)},
	{Name: "d.wasm", Task: final("t3", outcome.OK)},
}

// TestProgress: on a terminal, a bar with counts per outcome and, when stdout is that
// terminal too, a line for each failure only; piped, a line for every task.
func TestProgress(t *testing.T) {
	tests := []struct {
		name                 string
		barOn, stdoutTTY     bool
		format               format
		stdout, stderr, none []string
	}{
		{name: "piped", stdout: []string{"a.wasm\tt1\tok\n", "b.wasm\t-\trefused\tinvalid module\n", "c.wasm\tt2\ttrap\tit did trap\n"},
			stderr: []string{"agentbox: 4 tasks: 2 ok, 1 trap, 1 refused\n"}},
		{name: "terminal", barOn: true, stdoutTTY: true,
			stderr: []string{"2 ok, 1 trap, 1 refused", "4/4", "b.wasm\t-\trefused", "c.wasm\tt2\ttrap", "agentbox: 4 tasks:"},
			none:   []string{"a.wasm"}},
		{name: "bar on stderr, stdout piped", barOn: true, stdout: []string{"a.wasm\tt1\tok\n", "d.wasm"},
			stderr: []string{"2 ok, 1 trap, 1 refused", "4/4"}},
		{name: "jsonl", format: formatJSONL, stdout: []string{`{"name":"a.wasm","task":{"id":"t1"`, `"error":{"code":"invalid_argument"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			s := session{out: output{stdout: &stdout, stderr: &stderr}, format: tt.format}
			p := newProgressOn(s, len(progressResults), true, tt.barOn, tt.stdoutTTY)
			for _, r := range progressResults {
				p.submitted(r)
			}
			p.close()
			for _, want := range tt.stdout {
				if !strings.Contains(stdout.String(), want) {
					t.Errorf("stdout lacks %q:\n%q", want, stdout.String())
				}
			}
			for _, want := range tt.stderr {
				if !strings.Contains(stderr.String(), want) {
					t.Errorf("stderr lacks %q:\n%q", want, stderr.String())
				}
			}
			for _, no := range tt.none {
				if strings.Contains(stdout.String()+stderr.String(), no) {
					t.Errorf("output has %q:\n%q\n%q", no, stdout.String(), stderr.String())
				}
			}
		})
	}
}

// TestProgressWaitCountsFinal: with --wait, an accepted task not yet final is not
// settled on submission; it settles once, when final.
func TestProgressWaitCountsFinal(t *testing.T) {
	var stdout, stderr bytes.Buffer
	s := session{out: output{stdout: &stdout, stderr: &stderr}}
	p := newProgressOn(s, 1, true, false, false)
	queued := manyResult{Name: "a.wasm", Task: &task.Task{ID: "t1", State: task.Queued}}
	p.submitted(queued)
	if stdout.Len() != 0 || p.settled != 0 {
		t.Fatalf("a queued task settled under --wait: %q", stdout.String())
	}
	p.settle(manyResult{Name: "a.wasm", Task: final("t1", outcome.OK)})
	p.close()
	if stdout.String() != "a.wasm\tt1\tok\n" || !strings.Contains(stderr.String(), "1 tasks: 1 ok") {
		t.Errorf("stdout %q stderr %q", stdout.String(), stderr.String())
	}
}
