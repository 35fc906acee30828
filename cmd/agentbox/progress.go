package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/agentbox/agentbox/outcome"
	"github.com/agentbox/agentbox/supervisor/task"
)

// progress reports a many-task submit as it goes. On a terminal (stderr), a bar with
// counts per outcome; wherever output is piped, one line per task as it settles (is
// refused, accepted, or with --wait final), tab-separated, or one JSON object with -o
// jsonl. When stdout is the bar's terminal too, only failures get a line, above the bar.
// Waiters call it concurrently.
type progress struct {
	mu             sync.Mutex
	format         format
	stdout, stderr io.Writer
	bar            *progressbar.ProgressBar // nil when stderr is not a terminal
	quiet          bool                     // lines for failures only, printed above the bar
	wait           bool
	total, settled int
	counts         map[string]int
}

func newProgress(s session, total int, wait bool) *progress {
	return newProgressOn(s, total, wait, isTerminal(s.out.stderr), isTerminal(s.out.stdout))
}

// newProgressOn is newProgress with the terminals given, for tests.
func newProgressOn(s session, total int, wait, barOn, stdoutTerminal bool) *progress {
	p := &progress{format: s.format, stdout: s.out.stdout, stderr: s.out.stderr, wait: wait,
		total: total, counts: map[string]int{}}
	if barOn && total > 0 {
		p.bar = progressbar.NewOptions(total, progressbar.OptionSetWriter(s.out.stderr),
			progressbar.OptionShowCount(), progressbar.OptionSetWidth(30),
			progressbar.OptionSetPredictTime(false), progressbar.OptionSetDescription("submitting"))
		p.bar.RenderBlank()
		p.quiet = stdoutTerminal && s.format == formatTable
	}
	return p
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// submitted reports the daemon's answer to one submission. With --wait an accepted task
// settles only once final.
func (p *progress) submitted(r manyResult) {
	if r.Error != nil || !p.wait || r.Task.Final() {
		p.settle(r)
	}
}

// settle counts r and reports it.
func (p *progress) settle(r manyResult) {
	p.mu.Lock()
	defer p.mu.Unlock()
	key := resultKey(r)
	p.counts[key]++
	p.settled++
	p.line(r, key)
	if p.bar != nil {
		p.bar.Describe(p.tally())
		p.bar.Add(1)
	}
}

// resultKey is what r counts as: its outcome once final, else its state, or refused.
func resultKey(r manyResult) string {
	switch {
	case r.Error != nil:
		return "refused"
	case r.Task.Final():
		return string(r.Task.Outcome())
	}
	return string(r.Task.State)
}

// failed says whether a task that settled as key is one people should hear about.
func failed(key string) bool {
	return key != string(outcome.OK) && key != string(task.Queued) && key != string(task.Running)
}

func (p *progress) line(r manyResult, key string) {
	switch {
	case p.format == formatJSONL:
		p.stdout.Write(compactJSON(r))
	case p.format == formatJSON:
	case !p.quiet:
		fmt.Fprintln(p.stdout, resultLine(r, key))
	case failed(key):
		p.bar.Clear()
		fmt.Fprintln(p.stderr, resultLine(r, key))
		p.bar.RenderBlank()
	}
}

// resultLine is NAME, ID, result and message, tab-separated for cut and awk.
func resultLine(r manyResult, key string) string {
	id, msg := "-", ""
	if r.Task != nil {
		id = r.Task.ID
		if r.Task.Verdict != nil && key != string(outcome.OK) {
			msg = r.Task.Verdict.Message
		}
	}
	if r.Error != nil {
		msg = r.Error.Message
	}
	return strings.TrimRight(strings.Join([]string{r.Name, id, key, msg}, "\t"), "\t")
}

// tally is the counts, outcomes in their usual order, e.g. "5 ok, 1 trap, 2 refused".
func (p *progress) tally() string {
	keys := []string{string(task.Queued), string(task.Running)}
	for _, o := range outcome.All {
		keys = append(keys, string(o))
	}
	keys = append(keys, "refused")
	var parts []string
	for _, k := range keys {
		if n := p.counts[k]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, k))
		}
	}
	if len(parts) == 0 {
		return "submitting"
	}
	return strings.Join(parts, ", ")
}

// close ends the bar and, for people, sums up.
func (p *progress) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.bar != nil {
		if p.settled < p.total {
			p.bar.Exit()
		}
		fmt.Fprintln(p.stderr)
	}
	if p.format == formatTable {
		fmt.Fprintf(p.stderr, "agentbox: %d tasks: %s\n", p.total, p.tally())
	}
}
