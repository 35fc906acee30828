// Package task is the daemon's task record and the wire types of its /v1 API: what a
// client submits, what the daemon stores in its JetStream KV bucket (one record per task)
// and returns, and the state machine every change of a record goes through. The client
// (cmd/agentbox) and the server (supervisor) share these types, so the two cannot drift;
// the verdict inside a record is verdict.Verdict, the very object `agentbox run --json`
// prints.
package task

import (
	"time"

	"github.com/agentbox/agentbox/outcome"
	"github.com/agentbox/agentbox/sandbox"
	"github.com/agentbox/agentbox/verdict"
)

// State is where a task is in its life. Done is the only final state; the verdict says how
// it ended (cancelled included).
type State string

const (
	Queued  State = "queued"  // accepted, waiting for a slot (first attempt or a retry)
	Running State = "running" // an attempt holds a lease and runs in a sandbox
	Done    State = "done"    // final: Verdict is set and never changes again
)

// States lists every state (for docs, filters and table tests).
var States = []State{Queued, Running, Done}

// Priority orders one tenant's tasks: a tenant's high tasks run before its normal ones,
// FIFO within one priority. It never lets one tenant pass another (fairness is per tenant).
type Priority string

const (
	High   Priority = "high"
	Normal Priority = "normal" // the default
	Low    Priority = "low"
)

// Priorities lists every priority, highest first: the order a tenant's queues are served.
var Priorities = []Priority{High, Normal, Low}

// Limits are a task's limits in the forms the CLI's flags take ("256Mi", "30s"), under the
// flags' names; zero fields take the CLI's defaults (the sandbox package's constants).
type Limits struct {
	Memory          string  `json:"memory,omitempty"`
	CPUs            float64 `json:"cpus,omitempty"`
	Pids            int64   `json:"pids,omitempty"`
	Timeout         string  `json:"timeout,omitempty"`
	CPUTime         string  `json:"cpu_time,omitempty"`
	OutputLimit     string  `json:"output_limit,omitempty"`
	ClockResolution string  `json:"clock_resolution,omitempty"`
}

// RetryPolicy says which verdicts are worth another attempt. The default retries only
// sandbox_error (our own fault), up to 3 attempts, with exponential backoff and full
// jitter. Outcomes the guest caused are retried only when RetryOn names them.
type RetryPolicy struct {
	MaxAttempts int               `json:"max_attempts,omitempty"`
	RetryOn     []outcome.Outcome `json:"retry_on,omitempty"`
	BackoffBase string            `json:"backoff_base,omitempty"` // first backoff's bound, e.g. "1s"
	BackoffMax  string            `json:"backoff_max,omitempty"`  // largest backoff, e.g. "1m"
}

// SubmitRequest is one task as a client submits it (POST /v1/tasks).
type SubmitRequest struct {
	// Module is the sha256 hex digest of a module the tenant uploaded (POST /v1/modules).
	Module string   `json:"module"`
	Args   []string `json:"args,omitempty"` // argv after the program name
	Env    []string `json:"env,omitempty"`  // KEY=VALUE
	// Stdin is the guest's stdin (base64 in JSON), at most MaxStdinBytes.
	Stdin          []byte            `json:"stdin,omitempty"`
	Limits         Limits            `json:"limits,omitempty"`
	Retry          RetryPolicy       `json:"retry,omitempty"`
	Labels         map[string]string `json:"labels,omitempty"`
	Priority       Priority          `json:"priority,omitempty"`
	IdempotencyKey string            `json:"idempotency_key,omitempty"`
}

// BatchRequest submits many tasks in one call (POST /v1/tasks:batch). Each is accepted or
// refused on its own.
type BatchRequest struct {
	Tasks []SubmitRequest `json:"tasks"`
}

// BatchResult is one entry of a batch's answer, in the order submitted: the task, or the
// error that refused it.
type BatchResult struct {
	Task  *Task          `json:"task,omitempty"`
	Error *verdict.Error `json:"error,omitempty"`
}

// BatchResponse answers a BatchRequest.
type BatchResponse struct {
	Results []BatchResult `json:"results"`
}

// Attempt is one try at running a task. Its verdict is kept whatever it was, so a task's
// history shows every re-run, those after a lost lease included.
type Attempt struct {
	N         int        `json:"n"` // 1-based
	Host      string     `json:"host"`
	StartedAt time.Time  `json:"started_at"`
	EndedAt   *time.Time `json:"ended_at,omitempty"`
	// FirstOutputAt is when the guest first wrote to stdout: the closest outside view of
	// the guest starting (absent if it wrote nothing).
	FirstOutputAt *time.Time       `json:"first_output_at,omitempty"`
	Verdict       *verdict.Verdict `json:"verdict,omitempty"` // without output (GET …/verdict has it)
}

// Lease says who runs a task and until when it must renew. A running task whose lease
// passed has lost its holder: the next delivery of its message takes it over.
type Lease struct {
	Host  string    `json:"host"` // the holder: host id / incarnation`
	Until time.Time `json:"until"`
}

// Task is the record of one task: the request as resolved, where it is, and every attempt.
type Task struct {
	ID     string         `json:"id"`
	Tenant string         `json:"tenant"`
	State  State          `json:"state"`
	Module string         `json:"module"`
	Args   []string       `json:"args,omitempty"`
	Env    []string       `json:"env,omitempty"`
	Limits verdict.Limits `json:"limits"` // as applied, in the verdict's form
	// RunLimits are the same limits in the sandbox's units (bytes, nanoseconds): what the
	// holder applies, with no second parse of the forms above.
	RunLimits sandbox.Limits    `json:"run_limits"`
	Retry     RetryPolicy       `json:"retry"` // defaults filled in
	Labels    map[string]string `json:"labels,omitempty"`
	Priority  Priority          `json:"priority"`
	// IdempotencyKey, when set, makes a second submit with the same key return this task.
	IdempotencyKey string `json:"idempotency_key,omitempty"`
	StdinBytes     int    `json:"stdin_bytes"`

	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	// NotBefore: a queued retry waits for its backoff until then.
	NotBefore *time.Time `json:"not_before,omitempty"`
	Lease     *Lease     `json:"lease,omitempty"`
	// CancelRequested: a cancel reached a running task; its holder kills it.
	CancelRequested bool `json:"cancel_requested,omitempty"`

	Attempts []Attempt `json:"attempts"`
	// Verdict is the final verdict (without output), set exactly once, on the move to Done.
	Verdict *verdict.Verdict `json:"verdict,omitempty"`
	// Revision is the KV revision this copy was read at (the compare-and-set token); not
	// stored in the record itself.
	Revision uint64 `json:"revision"`
}

// Final reports whether t has its verdict.
func (t *Task) Final() bool { return t.State == Done }

// Outcome is the final outcome, or "" while the task is not final.
func (t *Task) Outcome() outcome.Outcome {
	if t.Verdict == nil {
		return ""
	}
	return t.Verdict.Outcome
}

// Module is an uploaded module as the API describes it.
type Module struct {
	Digest    string    `json:"digest"` // sha256 hex of the bytes
	Tenant    string    `json:"tenant"`
	Bytes     uint64    `json:"bytes"`
	CreatedAt time.Time `json:"created_at"`
}

// ModuleList is GET /v1/modules.
type ModuleList struct {
	Modules []Module `json:"modules"`
}

// Filter selects tasks for GET /v1/tasks. Zero fields match everything.
type Filter struct {
	State   State             `json:"state,omitempty"`
	Outcome outcome.Outcome   `json:"outcome,omitempty"`
	Labels  map[string]string `json:"labels,omitempty"` // every pair must match
	Since   time.Time         `json:"since,omitempty"`  // created at or after
	Until   time.Time         `json:"until,omitempty"`  // created before
	// Cursor continues a listing: the NextCursor of the page before.
	Cursor string `json:"cursor,omitempty"`
	Limit  int    `json:"limit,omitempty"` // default 100, at most 1000
}

// Page is one page of a listing, newest first. NextCursor is "" on the last page.
type Page struct {
	Tasks      []Task `json:"tasks"`
	NextCursor string `json:"next_cursor,omitempty"`
}

// Event is one change of a task, as GET /v1/events streams it (server-sent events).
type Event struct {
	Type string `json:"type"` // "task"
	Task Task   `json:"task"`
}

// Defaults and bounds of the API beyond the limits the CLI shares.
const (
	DefaultMaxAttempts = 3
	MaxMaxAttempts     = 10
	DefaultBackoffBase = time.Second
	DefaultBackoffMax  = time.Minute
	MaxStdinBytes      = 1 << 20
	MaxLabels          = 32
	MaxLabelBytes      = 256 // each key and each value
	MaxIdempotencyKey  = 256
	MaxBatch           = 1000
	DefaultPageLimit   = 100
	MaxPageLimit       = 1000
)
