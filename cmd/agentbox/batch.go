package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	"github.com/agentbox/agentbox/outcome"
	"github.com/agentbox/agentbox/supervisor/task"
	"github.com/agentbox/agentbox/verdict"
)

const (
	// batchChunk is how many tasks go in one POST /v1/tasks:batch: well under the API's
	// bound, and small enough that a chunk's body stays a few MiB with stdin in it.
	batchChunk = 100
	// waiters is how many tasks are waited on at once; each holds a long-poll. Tasks end
	// roughly in the order submitted, so a few in flight keep up with the daemon's slots.
	waiters = 16
	// maxBatchLine bounds one line of --batch: a request with the largest stdin (base64).
	maxBatchLine = 2*task.MaxStdinBytes + 1<<20
)

// item is one task of a many-task submit.
type item struct {
	name string // the module file, or FILE:LINE of --batch: what the user can find
	file string // the module file to push first; "" when req names a digest
	req  task.SubmitRequest
}

// manyResult is how one task of a many-task submit ended here: accepted (with --wait,
// final), or refused.
type manyResult struct {
	Name  string         `json:"name"`
	Task  *task.Task     `json:"task,omitempty"`
	Error *verdict.Error `json:"error,omitempty"`
}

// manyResults is the JSON of a many-task submit under -o json, in the order submitted.
type manyResults struct {
	Results []manyResult `json:"results"`
}

// submitMany submits a directory of modules or a batch file; see submitLong.
func (s session) submitMany(ctx context.Context, f submitFlags, base task.SubmitRequest, args []string) int {
	if base.IdempotencyKey != "" {
		return s.fail(verdict.Errorf(verdict.InvalidArgument, "--idempotency-key", base.IdempotencyKey,
			"--idempotency-key names one task; with many, give each line of --batch its own idempotency_key"))
	}
	items, err := s.manyItems(f, base, args)
	if err != nil {
		return s.fail(err)
	}
	results := make([]manyResult, len(items))
	for i, it := range items {
		results[i].Name = it.name
	}
	p := newProgress(s, len(items), f.wait)
	err = s.pushAll(ctx, items, results, p)
	if err == nil {
		err = s.submitAll(ctx, items, results, p)
	}
	if err == nil && f.wait {
		s.waitAll(ctx, results, p)
	}
	p.close()
	if err != nil {
		return s.fail(err)
	}
	if s.format == formatJSON {
		s.print(manyResults{Results: results})
	}
	return s.manyExitCode(ctx, results)
}

// manyItems reads the tasks of --batch, or of a directory.
func (s session) manyItems(f submitFlags, base task.SubmitRequest, args []string) ([]item, error) {
	if f.batch == "" {
		return dirItems(args[0], guestArgs(args[1:]), base)
	}
	if len(args) > 0 {
		return nil, verdict.Errorf(verdict.InvalidArgument, "ARGS", args[0], "--batch takes no MODULE or ARGS (got %q): put them on its lines", args[0])
	}
	if f.batch == "-" {
		return batchItems("-", ".", s.stdin, base)
	}
	file, err := os.Open(f.batch)
	if err != nil {
		return nil, verdict.Errorf(verdict.InvalidArgument, "--batch", f.batch, "--batch: %w", err)
	}
	defer file.Close()
	return batchItems(f.batch, filepath.Dir(f.batch), file, base)
}

// dirItems is one task per DIR/*.wasm, in name order, each with args.
func dirItems(dir string, args []string, base task.SubmitRequest) ([]item, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.wasm"))
	if err != nil || len(files) == 0 {
		return nil, verdict.Errorf(verdict.InvalidArgument, "MODULE", dir, "%s has no *.wasm file to submit", dir)
	}
	items := make([]item, len(files))
	for i, p := range files {
		r := base
		r.Args = args
		items[i] = item{name: p, file: p, req: r}
	}
	return items, nil
}

// batchItems reads one SubmitRequest per line of r (blank lines skipped), strictly: a
// misspelt field refuses the file, naming its line, before anything is submitted.
func batchItems(name, dir string, r io.Reader, base task.SubmitRequest) ([]item, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxBatchLine)
	var items []item
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		it, err := batchItem(fmt.Sprintf("%s:%d", name, n), dir, line, base)
		if err != nil {
			return nil, err
		}
		items = append(items, it)
	}
	if err := sc.Err(); err != nil {
		return nil, verdict.Errorf(verdict.InvalidArgument, "--batch", name, "--batch %s: %w", name, err)
	}
	if len(items) == 0 {
		return nil, verdict.Errorf(verdict.InvalidArgument, "--batch", name, "--batch %s has no task in it", name)
	}
	return items, nil
}

func batchItem(where, dir string, line []byte, base task.SubmitRequest) (item, error) {
	var r task.SubmitRequest
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return item{}, verdict.Errorf(verdict.InvalidArgument, "--batch", where, "%s: want one task.SubmitRequest JSON object: %v", where, err)
	}
	if r.Module == "" {
		return item{}, verdict.Errorf(verdict.InvalidArgument, "--batch", where, "%s: no \"module\": want a digest or a .wasm file", where)
	}
	it := item{name: where, req: withDefaults(r, base)}
	if d, ok := moduleDigest(r.Module); ok {
		it.req.Module = d
		return it, nil
	}
	it.file = r.Module
	if !filepath.IsAbs(it.file) {
		it.file = filepath.Join(dir, it.file)
	}
	it.name = where + " " + it.file
	return it, nil
}

// withDefaults fills in what line r leaves out from the flags' request base.
func withDefaults(r, base task.SubmitRequest) task.SubmitRequest {
	fill := func(v *string, def string) {
		if *v == "" {
			*v = def
		}
	}
	l, b := &r.Limits, base.Limits
	fill(&l.Memory, b.Memory)
	fill(&l.Timeout, b.Timeout)
	fill(&l.CPUTime, b.CPUTime)
	fill(&l.OutputLimit, b.OutputLimit)
	fill(&l.ClockResolution, b.ClockResolution)
	if l.CPUs == 0 {
		l.CPUs = b.CPUs
	}
	if l.Pids == 0 {
		l.Pids = b.Pids
	}
	if r.Env == nil {
		r.Env = base.Env
	}
	if r.Stdin == nil {
		r.Stdin = base.Stdin
	}
	if r.Priority == "" {
		r.Priority = base.Priority
	}
	if r.Retry.MaxAttempts == 0 {
		r.Retry.MaxAttempts = base.Retry.MaxAttempts
	}
	r.Labels = mergeLabels(base.Labels, r.Labels)
	return r
}

// mergeLabels is base's labels with line's on top.
func mergeLabels(base, line map[string]string) map[string]string {
	if len(base) == 0 {
		return line
	}
	m := make(map[string]string, len(base)+len(line))
	for k, v := range base {
		m[k] = v
	}
	for k, v := range line {
		m[k] = v
	}
	return m
}

// pushAll pushes every module file once. A module the daemon refuses (invalid) refuses
// its tasks; a daemon that cannot be reached stops everything.
func (s session) pushAll(ctx context.Context, items []item, results []manyResult, p *progress) error {
	type pushed struct {
		digest string
		err    *verdict.Error
	}
	seen := map[string]pushed{}
	for i := range items {
		it := &items[i]
		if it.file == "" {
			continue
		}
		got, ok := seen[it.file]
		if !ok {
			m, err := s.push(ctx, it.file)
			if err != nil && !errors.As(err, &got.err) {
				return err
			}
			got.digest = m.Digest
			seen[it.file] = got
		}
		if got.err != nil {
			results[i].Error = got.err
			p.settle(results[i])
			continue
		}
		it.req.Module = got.digest
	}
	return nil
}

// submitAll submits the items not already refused, batchChunk at a time. An entry
// refused as queue_full is submitted again alone, and Submit waits out the backpressure.
func (s session) submitAll(ctx context.Context, items []item, results []manyResult, p *progress) error {
	var todo []int
	for i := range items {
		if results[i].Error == nil {
			todo = append(todo, i)
		}
	}
	for len(todo) > 0 {
		chunk := todo[:min(batchChunk, len(todo))]
		todo = todo[len(chunk):]
		if err := s.submitChunk(ctx, items, results, chunk, p); err != nil {
			return err
		}
	}
	return nil
}

func (s session) submitChunk(ctx context.Context, items []item, results []manyResult, chunk []int, p *progress) error {
	reqs := make([]task.SubmitRequest, len(chunk))
	for j, i := range chunk {
		reqs[j] = items[i].req
	}
	res, err := s.c.SubmitBatch(ctx, reqs)
	if err != nil {
		return err
	}
	for j, i := range chunk {
		r := res[j]
		if r.Error != nil && r.Error.Code == verdict.QueueFull {
			if r, err = s.resubmit(ctx, reqs[j]); err != nil {
				return err
			}
		}
		if r.Error != nil {
			results[i].Error = r.Error
		} else {
			results[i].Task = r.Task
		}
		p.submitted(results[i])
	}
	return nil
}

// resubmit submits one request alone: Submit waits out a full queue.
func (s session) resubmit(ctx context.Context, req task.SubmitRequest) (task.BatchResult, error) {
	t, err := s.c.Submit(ctx, req)
	var e *verdict.Error
	switch {
	case err == nil:
		return task.BatchResult{Task: &t}, nil
	case errors.As(err, &e):
		return task.BatchResult{Error: e}, nil
	}
	return task.BatchResult{}, err
}

// waitAll waits for every accepted task, a few at a time, until all are final or ctx
// ends (the tasks left keep their last state).
func (s session) waitAll(ctx context.Context, results []manyResult, p *progress) {
	next := make(chan int)
	var wg sync.WaitGroup
	for range waiters {
		wg.Go(func() {
			for i := range next {
				s.waitOne(ctx, &results[i], p)
			}
		})
	}
	for i := range results {
		if r := results[i]; r.Task != nil && !r.Task.Final() && ctx.Err() == nil {
			next <- i
		}
	}
	close(next)
	wg.Wait()
}

func (s session) waitOne(ctx context.Context, r *manyResult, p *progress) {
	t, err := s.c.Wait(ctx, r.Task.ID)
	switch {
	case ctx.Err() != nil:
		return
	case err != nil:
		var e *verdict.Error
		errors.As(s.clientError(err), &e)
		r.Error = e
	default:
		r.Task = &t
	}
	p.settle(*r)
}

// manyExitCode is 0 when every task was accepted (and, when waited for, ended ok); else
// the code of the first that was not, in the order submitted.
func (s session) manyExitCode(ctx context.Context, results []manyResult) int {
	if ctx.Err() != nil {
		fmt.Fprintf(s.out.stderr, "agentbox: interrupted; the tasks not final yet keep going: agentbox ls --state queued\n")
		return exitCancelled
	}
	for _, r := range results {
		switch {
		case r.Error != nil:
			return exitUsage
		case r.Task != nil && r.Task.Final() && r.Task.Outcome() != outcome.OK:
			var guest uint32
			if c := r.Task.Verdict.ExitCode; c != nil {
				guest = *c
			}
			return exitCodeFor(r.Task.Outcome(), guest)
		}
	}
	return exitOK
}
