// Package api is agentboxd's HTTP/JSON interface, versioned under /v1: modules, tasks,
// long-poll waits, server-sent events, health and metrics. It owns only the mapping
// between HTTP and the daemon's service (the Backend interface): authentication by
// bearer token to a tenant, decoding that refuses what it does not understand, and one
// error shape (verdict.ErrorBody) for every refusal. It keeps no state of its own beyond
// the token set, so the same Server runs over a unix socket or TCP, and the document of
// the API (openapi.json, served at /v1/openapi.json) is tested against its route table.
package api

import (
	"context"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/agentbox/agentbox/supervisor/task"
	"github.com/agentbox/agentbox/verdict"
)

// Backend is the daemon's service as the API sees it (*supervisor.Service implements it).
// Every error it returns is a *verdict.Error; anything else is answered as a 500 with a
// generic message and logged, so that an internal detail never reaches a client.
type Backend interface {
	// PutModule validates and compiles wasm in a sandboxed child and stores it.
	PutModule(ctx context.Context, tenant string, wasm []byte) (task.Module, error)
	GetModule(ctx context.Context, tenant, digest string) (task.Module, error)
	ListModules(ctx context.Context, tenant string) ([]task.Module, error)
	DeleteModule(ctx context.Context, tenant, digest string) error
	// Submit accepts a task; created is false when the idempotency key was already used,
	// and t is then the task that key made.
	Submit(ctx context.Context, tenant string, req task.SubmitRequest) (t task.Task, created bool, err error)
	Get(ctx context.Context, tenant, id string) (task.Task, error)
	// Verdict is the final verdict with its output; not_found while the task is not final.
	Verdict(ctx context.Context, tenant, id string) (verdict.Verdict, error)
	List(ctx context.Context, tenant string, f task.Filter) (task.Page, error)
	Cancel(ctx context.Context, tenant, id string) (task.Task, error)
	// Wait returns when the task is final, or when ctx ends with the current record and a
	// nil error.
	Wait(ctx context.Context, tenant, id string) (task.Task, error)
	// Subscribe streams every change of the tenant's tasks until ctx ends, then closes.
	Subscribe(ctx context.Context, tenant string) <-chan task.Event
	// Ready is nil once JetStream is reachable and the sandbox self-check passed.
	Ready(ctx context.Context) error
}

// Defaults of Options.
const (
	DefaultMaxModuleBytes = 64 << 20
	DefaultMaxBodyBytes   = 8 << 20
	DefaultWaitMax        = 60 * time.Second
	DefaultSSEHeartbeat   = 15 * time.Second
	// DefaultTenant is every request's tenant when the server has no tokens (a unix socket
	// whose mode and group are the access control).
	DefaultTenant = "default"
	// readyTimeout bounds one readiness check, so that a hung JetStream makes /readyz
	// answer 503 rather than hang the prober.
	readyTimeout = 5 * time.Second
)

// Options configure a Server. Zero fields take the defaults above.
type Options struct {
	// Tokens maps bearer tokens to tenants. Nil: no authentication, and every request is
	// DefaultTenant's.
	Tokens *Tokens
	// MaxModuleBytes caps an uploaded module (413 past it).
	MaxModuleBytes int64
	// MaxBodyBytes caps a JSON request body (413 past it).
	MaxBodyBytes int64
	// Metrics serves GET /metrics without a token; nil answers 404 there.
	Metrics http.Handler
	// Logger gets the causes of 500s, which clients never see. Nil: slog.Default().
	Logger *slog.Logger
	// WaitMax caps a long-poll's timeout.
	WaitMax time.Duration
	// SSEHeartbeat is how often an idle event stream gets a comment line, so that proxies
	// and clients tell a quiet stream from a dead one.
	SSEHeartbeat time.Duration
}

// Server answers the API. It is safe for concurrent use; only its token set changes
// after New (SetTokens).
type Server struct {
	b      Backend
	opts   Options
	log    *slog.Logger
	tokens atomic.Pointer[Tokens]
	mux    *http.ServeMux
}

// New makes a Server over b.
func New(b Backend, opts Options) *Server {
	s := &Server{b: b, opts: withDefaults(opts)}
	s.log = s.opts.Logger
	s.tokens.Store(opts.Tokens)
	s.mux = http.NewServeMux()
	for _, rt := range s.routes() {
		s.mux.Handle(rt.Method+" "+rt.Path, s.wrap(rt))
	}
	return s
}

func withDefaults(o Options) Options {
	if o.MaxModuleBytes <= 0 {
		o.MaxModuleBytes = DefaultMaxModuleBytes
	}
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if o.WaitMax <= 0 {
		o.WaitMax = DefaultWaitMax
	}
	if o.SSEHeartbeat <= 0 {
		o.SSEHeartbeat = DefaultSSEHeartbeat
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// SetTokens swaps the token set live (SIGHUP): requests already authenticated keep their
// tenant, the next ones see t. It never turns authentication off: nil installs an empty
// set, which refuses every token, so that a failed reload cannot open the API.
func (s *Server) SetTokens(t *Tokens) {
	if t == nil {
		t = &Tokens{}
	}
	s.tokens.Store(t)
}

// Handler is the whole API, for an http.Server.
func (s *Server) Handler() http.Handler { return http.HandlerFunc(s.serve) }

// serve routes r, answering what matches no route in the JSON error shape rather than
// ServeMux's plain text (404, and 405 with its Allow header).
func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if _, pattern := s.mux.Handler(r); pattern == "" {
		s.unrouted(w, r)
		return
	}
	s.mux.ServeHTTP(w, r)
}
