package api

import (
	"context"
	"errors"
	"net/http"

	"github.com/agentbox/agentbox/verdict"
)

// healthz answers while the process serves: liveness, nothing more (a dead JetStream is
// /readyz's business, and restarting the daemon for it would not help).
func (s *Server) healthz(w http.ResponseWriter, r *http.Request, _ string) error {
	writeText(w, http.StatusOK, "ok\n")
	return nil
}

// readyz answers 200 once the backend is ready, else 503 with the reason: a prober or an
// operator reads it, and the reason names what to fix.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request, _ string) error {
	ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
	defer cancel()
	err := s.b.Ready(ctx)
	if err == nil {
		writeText(w, http.StatusOK, "ready\n")
		return nil
	}
	code := verdict.Unsupported
	var ve *verdict.Error
	if errors.As(err, &ve) {
		code = ve.Code
	}
	ve = &verdict.Error{Code: code, Message: "not ready: " + err.Error()}
	writeJSON(w, http.StatusServiceUnavailable, verdict.ErrorBody{Error: ve})
	return nil
}

// metrics serves Options.Metrics; without one there is nothing at /metrics.
func (s *Server) metrics(w http.ResponseWriter, r *http.Request, _ string) error {
	if s.opts.Metrics == nil {
		return notFound("path", r.URL.Path, "metrics are not enabled on this daemon")
	}
	s.opts.Metrics.ServeHTTP(w, r)
	return nil
}

// openapi serves the document of this API, the one the tests hold the server to.
func (s *Server) openapi(w http.ResponseWriter, r *http.Request, _ string) error {
	w.Header().Set("Content-Type", "application/json")
	w.Write(OpenAPI())
	return nil
}

func writeText(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	w.Write([]byte(body))
}
