package api

import (
	"maps"
	"net/http"
	"slices"

	"github.com/agentbox/agentbox/verdict"
)

// route is one entry of the API: a ServeMux pattern, whether it needs a token, and its
// handler. The table is the single list of what the server serves; the OpenAPI test reads
// it, so a route cannot be added without documenting it.
type route struct {
	Method string
	Path   string // ServeMux form, the same as OpenAPI's: /v1/tasks/{id}
	// Status is the answer on success (the OpenAPI test checks the document has it).
	Status int
	// Open routes need no token: probes and Prometheus do not carry one. Their query is
	// left to their handler (the metrics handler has its own).
	Open bool
	// Query lists the query parameters the route takes; any other is refused.
	Query  []string
	handle handlerFunc
}

// handlerFunc serves one request of tenant; a returned error is written as the JSON
// error shape (so it must return before writing anything else).
type handlerFunc func(w http.ResponseWriter, r *http.Request, tenant string) error

func (s *Server) routes() []route {
	return []route{
		{Method: "POST", Path: "/v1/modules", Status: http.StatusCreated, handle: s.putModule},
		{Method: "GET", Path: "/v1/modules", Status: http.StatusOK, handle: s.listModules},
		{Method: "GET", Path: "/v1/modules/{digest}", Status: http.StatusOK, handle: s.getModule},
		{Method: "DELETE", Path: "/v1/modules/{digest}", Status: http.StatusNoContent, handle: s.deleteModule},
		{Method: "POST", Path: "/v1/tasks", Status: http.StatusAccepted, handle: s.submit},
		{Method: "POST", Path: "/v1/tasks:batch", Status: http.StatusOK, handle: s.batch},
		{Method: "GET", Path: "/v1/tasks", Status: http.StatusOK, Query: slices.Sorted(maps.Keys(listParams)), handle: s.list},
		{Method: "GET", Path: "/v1/tasks/{id}", Status: http.StatusOK, handle: s.get},
		{Method: "GET", Path: "/v1/tasks/{id}/verdict", Status: http.StatusOK, handle: s.verdict},
		{Method: "POST", Path: "/v1/tasks/{id}/cancel", Status: http.StatusOK, handle: s.cancel},
		{Method: "GET", Path: "/v1/tasks/{id}/wait", Status: http.StatusOK, Query: []string{"timeout"}, handle: s.wait},
		{Method: "GET", Path: "/v1/events", Status: http.StatusOK, handle: s.events},
		{Method: "GET", Path: "/v1/openapi.json", Status: http.StatusOK, handle: s.openapi},
		{Method: "GET", Path: "/healthz", Status: http.StatusOK, Open: true, handle: s.healthz},
		{Method: "GET", Path: "/readyz", Status: http.StatusOK, Open: true, handle: s.readyz},
		{Method: "GET", Path: "/metrics", Status: http.StatusOK, Open: true, handle: s.metrics},
	}
}

// wrap authenticates a request (unless the route is open), checks its query, and writes
// a handler's error.
func (s *Server) wrap(rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tenant, ok := s.tenantOf(rt, r)
		if !ok {
			writeUnauthenticated(w)
			return
		}
		if err := serveRoute(rt, w, r, tenant); err != nil {
			s.writeError(w, r, err)
		}
	})
}

// tenantOf is the tenant r speaks for; "" on an open route, which serves no tenant.
func (s *Server) tenantOf(rt route, r *http.Request) (string, bool) {
	if rt.Open {
		return "", true
	}
	return s.authenticate(r)
}

func serveRoute(rt route, w http.ResponseWriter, r *http.Request, tenant string) error {
	if !rt.Open {
		if err := checkQuery(r, rt.Query); err != nil {
			return err
		}
	}
	return rt.handle(w, r, tenant)
}

// unrouted answers a request no pattern matched: ServeMux decides between 404 and 405
// (and the Allow header); we only put its answer in the JSON error shape. Nothing about
// the route table is secret, so this needs no token.
func (s *Server) unrouted(w http.ResponseWriter, r *http.Request) {
	h, _ := s.mux.Handler(r)
	probe := &statusProbe{header: http.Header{}}
	h.ServeHTTP(probe, r)
	if probe.status == http.StatusMethodNotAllowed {
		allow := probe.header.Get("Allow")
		w.Header().Set("Allow", allow)
		writeJSON(w, http.StatusMethodNotAllowed, verdict.ErrorBody{Error: &verdict.Error{
			Code: verdict.InvalidArgument, Field: "method", Value: r.Method,
			Message: "method " + r.Method + " is not allowed on " + r.URL.Path + ": allowed are " + allow,
		}})
		return
	}
	writeJSON(w, http.StatusNotFound, verdict.ErrorBody{Error: &verdict.Error{
		Code: verdict.NotFound, Field: "path", Value: r.URL.Path,
		Message: "no route " + r.URL.Path + " (the API lives under /v1; see /v1/openapi.json)",
	}})
}

// statusProbe records the status and headers ServeMux's own 404/405 handlers would send.
type statusProbe struct {
	header http.Header
	status int
}

func (p *statusProbe) Header() http.Header { return p.header }

func (p *statusProbe) Write(b []byte) (int, error) {
	p.WriteHeader(http.StatusOK)
	return len(b), nil
}

func (p *statusProbe) WriteHeader(code int) {
	if p.status == 0 {
		p.status = code
	}
}
