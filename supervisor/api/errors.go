package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/agentbox/agentbox/verdict"
)

// unauthenticatedBody is the whole answer to a missing or wrong token: it says nothing
// about which tokens or tenants exist.
var unauthenticatedBody = verdict.ErrorBody{Error: &verdict.Error{
	Code: verdict.Unauthenticated, Message: "missing or invalid token",
}}

// internalMessage replaces the cause of a 500 that is not a *verdict.Error: the cause
// may name paths or hosts, and goes to the log instead.
const internalMessage = "internal error in agentboxd; its log has the details"

func invalid(field, value, format string, args ...any) error {
	return verdict.Errorf(verdict.InvalidArgument, field, value, format, args...)
}

func tooLarge(field, value, format string, args ...any) error {
	return verdict.Errorf(verdict.TooLarge, field, value, format, args...)
}

func notFound(field, value, format string, args ...any) error {
	return verdict.Errorf(verdict.NotFound, field, value, format, args...)
}

func writeUnauthenticated(w http.ResponseWriter) {
	w.Header().Set("WWW-Authenticate", "Bearer")
	writeJSON(w, http.StatusUnauthorized, unauthenticatedBody)
}

// writeError answers err in the one error shape, with its code's status. queue_full gets
// Retry-After, the only advice a client needs to back off.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	ve := s.asVerdictError(r, err)
	if ve.Code == verdict.QueueFull {
		w.Header().Set("Retry-After", "1")
	}
	writeJSON(w, ve.Code.HTTPStatus(), verdict.ErrorBody{Error: ve})
}

// asVerdictError is err as the client may see it: a *verdict.Error as it is, anything
// else logged and replaced by a generic setup_failed.
func (s *Server) asVerdictError(r *http.Request, err error) *verdict.Error {
	var ve *verdict.Error
	if errors.As(err, &ve) {
		return ve
	}
	level := s.log.Error
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		level = s.log.Debug // the client went away; nobody reads this answer
	}
	level("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	return &verdict.Error{Code: verdict.SetupFailed, Message: internalMessage}
}

// writeJSON writes v indented, with a final newline: the very bytes `agentbox run --json`
// prints for the same value.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		// The wire types always encode; failing here is a bug in this package.
		panic(fmt.Sprintf("encode %T: %v", v, err))
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}
