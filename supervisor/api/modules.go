package api

import (
	"net/http"

	"github.com/agentbox/agentbox/supervisor/task"
)

// putModule stores the wasm bytes of the body. The cap is checked before the backend
// sees anything, and the module is validated and compiled by the backend in a sandboxed
// child, never here.
func (s *Server) putModule(w http.ResponseWriter, r *http.Request, tenant string) error {
	if err := checkContentType(r, "application/wasm", "application/octet-stream"); err != nil {
		return err
	}
	wasm, err := readBody(w, r, s.opts.MaxModuleBytes)
	if err != nil {
		return err
	}
	if len(wasm) == 0 {
		return invalid("body", "", "the body is empty: want the module's wasm bytes")
	}
	m, err := s.b.PutModule(r.Context(), tenant, wasm)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/v1/modules/"+m.Digest)
	writeJSON(w, http.StatusCreated, m)
	return nil
}

func (s *Server) listModules(w http.ResponseWriter, r *http.Request, tenant string) error {
	ms, err := s.b.ListModules(r.Context(), tenant)
	if err != nil {
		return err
	}
	if ms == nil {
		ms = []task.Module{} // "modules": [] rather than null, so clients need no null check
	}
	writeJSON(w, http.StatusOK, task.ModuleList{Modules: ms})
	return nil
}

func (s *Server) getModule(w http.ResponseWriter, r *http.Request, tenant string) error {
	digest, err := digestParam(r)
	if err != nil {
		return err
	}
	m, err := s.b.GetModule(r.Context(), tenant, digest)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, m)
	return nil
}

func (s *Server) deleteModule(w http.ResponseWriter, r *http.Request, tenant string) error {
	digest, err := digestParam(r)
	if err != nil {
		return err
	}
	if err := s.b.DeleteModule(r.Context(), tenant, digest); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// digestParam is the {digest} of the path, refused unless it is a sha256 hex digest (the
// only name a module has), before it reaches a store key.
func digestParam(r *http.Request) (string, error) {
	d := r.PathValue("digest")
	if !task.ValidDigest(d) {
		return "", invalid("digest", d, "module digest %q: want the 64 lowercase hex digits that POST /v1/modules returned", d)
	}
	return d, nil
}
