package client

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/agentbox/agentbox/supervisor/task"
	"github.com/agentbox/agentbox/verdict"
)

// waitPoll is how long one long-poll of Wait asks the daemon to hold the request.
const waitPoll = 30 * time.Second

// Submit submits one task (POST /v1/tasks). A full queue (429 queue_full) is
// backpressure, not a refusal: Submit waits the Retry-After the daemon sent (a second when
// it sent none, at most a minute at a time, plus up to a tenth more so that many clients
// do not come back at once) and tries again, until the task is accepted or ctx ends; then
// it returns the last 429. The daemon answers 200 instead of 202 when r's idempotency key
// matched a task it already has, and that task is returned.
func (c *Client) Submit(ctx context.Context, r task.SubmitRequest) (task.Task, error) {
	var t task.Task
	req, err := jsonCall(http.MethodPost, "/v1/tasks", r)
	if err != nil {
		return t, err
	}
	err = c.retryFull(ctx, func() error { return c.do(ctx, req, &t) })
	return t, err
}

// SubmitBatch submits many tasks in one request (POST /v1/tasks:batch); each is accepted
// or refused on its own, and the results come in the order of rs. A 429 for the whole
// request is waited out as Submit does; a queue_full result for one entry is the caller's
// to resubmit (Submit does the waiting).
func (c *Client) SubmitBatch(ctx context.Context, rs []task.SubmitRequest) ([]task.BatchResult, error) {
	var resp task.BatchResponse
	req, err := jsonCall(http.MethodPost, "/v1/tasks:batch", task.BatchRequest{Tasks: rs})
	if err != nil {
		return nil, err
	}
	if err := c.retryFull(ctx, func() error { return c.do(ctx, req, &resp) }); err != nil {
		return nil, err
	}
	if len(resp.Results) != len(rs) {
		return resp.Results, fmt.Errorf("POST /v1/tasks:batch at %s: %d results for %d tasks", c.host, len(resp.Results), len(rs))
	}
	return resp.Results, nil
}

// retryFull runs send until it is not refused with 429, or ctx ends; then the last 429
// is the error, which says more than the context's.
func (c *Client) retryFull(ctx context.Context, send func() error) error {
	var full error
	for {
		err := send()
		var se *StatusError
		if !errors.As(err, &se) || se.Status != http.StatusTooManyRequests {
			if full != nil && ctx.Err() != nil {
				return full
			}
			return err
		}
		full = err
		if sleep(ctx, c.backoff(se.RetryAfter)) != nil {
			return full
		}
	}
}

// backoff is how long to wait on a Retry-After of d.
func (c *Client) backoff(d time.Duration) time.Duration {
	d = min(d, c.retryCap)
	return d + rand.N(d/10+time.Millisecond)
}

// sleep waits d or until ctx ends, whichever is first; it returns ctx's error if it ended.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Get returns one task (GET /v1/tasks/{id}).
func (c *Client) Get(ctx context.Context, id string) (task.Task, error) {
	var t task.Task
	err := c.do(ctx, call{method: http.MethodGet, path: taskPath(id, "")}, &t)
	return t, err
}

// Verdict returns a final task's verdict with its captured stdout and stderr
// (GET /v1/tasks/{id}/verdict): the very object `agentbox run --json` prints.
func (c *Client) Verdict(ctx context.Context, id string) (verdict.Verdict, error) {
	var v verdict.Verdict
	err := c.do(ctx, call{method: http.MethodGet, path: taskPath(id, "/verdict")}, &v)
	return v, err
}

// Cancel cancels a task (POST /v1/tasks/{id}/cancel): a queued one never runs, a running
// one is killed; either way its verdict is cancelled. The task is returned as the cancel
// left it (a running one may not be final yet: Wait for it).
func (c *Client) Cancel(ctx context.Context, id string) (task.Task, error) {
	var t task.Task
	err := c.do(ctx, call{method: http.MethodPost, path: taskPath(id, "/cancel")}, &t)
	return t, err
}

// List returns one page of the tenant's tasks, newest first (GET /v1/tasks); pass the
// page's NextCursor in f.Cursor for the next one.
func (c *Client) List(ctx context.Context, f task.Filter) (task.Page, error) {
	var p task.Page
	err := c.do(ctx, call{method: http.MethodGet, path: "/v1/tasks", query: filterQuery(f)}, &p)
	return p, err
}

// filterQuery is f as GET /v1/tasks's query; labels go in key order, so that a request is
// the same from one run to the next.
func filterQuery(f task.Filter) url.Values {
	q := url.Values{}
	set := func(k, v string) {
		if v != "" {
			q.Set(k, v)
		}
	}
	set("state", string(f.State))
	set("outcome", string(f.Outcome))
	set("cursor", f.Cursor)
	if !f.Since.IsZero() {
		q.Set("since", f.Since.Format(time.RFC3339Nano))
	}
	if !f.Until.IsZero() {
		q.Set("until", f.Until.Format(time.RFC3339Nano))
	}
	if f.Limit > 0 {
		q.Set("limit", strconv.Itoa(f.Limit))
	}
	keys := make([]string, 0, len(f.Labels))
	for k := range f.Labels {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		q.Add("label", k+"="+f.Labels[k])
	}
	return q
}

// Wait returns the task once it is final, long-polling GET /v1/tasks/{id}/wait (each poll
// held at most 30s, or what is left of ctx's deadline), for as long as ctx lasts. When ctx
// ends first, the error wraps ctx's and the task is the last copy seen (its ID is set once
// one poll answered).
func (c *Client) Wait(ctx context.Context, id string) (task.Task, error) {
	var last task.Task
	for {
		start := time.Now()
		t, err := c.waitOnce(ctx, id, pollTimeout(ctx, start))
		if err != nil {
			return last, err
		}
		if t.Final() {
			return t, nil
		}
		last = t
		// A daemon that answers at once (a state change, or one that ignores the timeout)
		// must not turn the loop into a busy one.
		if err := sleep(ctx, c.pollFloor-time.Since(start)); err != nil {
			return last, fmt.Errorf("wait for task %s at %s: %w", id, c.host, err)
		}
	}
}

func (c *Client) waitOnce(ctx context.Context, id string, timeout time.Duration) (task.Task, error) {
	var t task.Task
	q := url.Values{"timeout": {timeout.String()}}
	err := c.do(ctx, call{method: http.MethodGet, path: taskPath(id, "/wait"), query: q}, &t)
	return t, err
}

// pollTimeout is the timeout of one long-poll: waitPoll, or less when ctx's deadline is
// nearer, so that the daemon answers before ctx gives up on the request.
func pollTimeout(ctx context.Context, now time.Time) time.Duration {
	d := waitPoll
	if dl, ok := ctx.Deadline(); ok {
		d = min(d, dl.Sub(now))
	}
	return max(d.Round(time.Millisecond), time.Millisecond)
}

func taskPath(id, suffix string) string { return "/v1/tasks/" + url.PathEscape(id) + suffix }
