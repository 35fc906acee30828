package api

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/agentbox/agentbox/internal/syncbuf"
	"github.com/agentbox/agentbox/verdict"
)

// wasmBytes passes the fake's check (the magic and version of a wasm module).
var wasmBytes = []byte("\x00asm\x01\x00\x00\x00")

// harness is a Server over a fake on a real HTTP listener. Every answer it gets is
// checked against the OpenAPI document (do), so every test here is also a test that
// server and document agree.
type harness struct {
	t    *testing.T
	f    *fake
	s    *Server
	srv  *httptest.Server
	logs *syncbuf.Buffer
	doc  *oaDoc
}

func newHarness(t *testing.T, opts Options) *harness {
	t.Helper()
	h := &harness{t: t, f: newFake(), logs: &syncbuf.Buffer{}, doc: loadDoc(t)}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	h.s = New(h.f, opts)
	h.srv = httptest.NewServer(h.s.Handler())
	t.Cleanup(h.srv.Close)
	return h
}

type result struct {
	status int
	header http.Header
	body   []byte
}

// errorOf is the error the body carries, failing the test if it carries none.
func (r *result) errorOf(t *testing.T) verdict.Error {
	t.Helper()
	var eb verdict.ErrorBody
	if err := json.Unmarshal(r.body, &eb); err != nil || eb.Error == nil {
		t.Fatalf("status %d: want an error body, got %q (%v)", r.status, r.body, err)
	}
	return *eb.Error
}

// req is one request: header pairs ("Content-Type", "application/json", ...).
type req struct {
	method, path string
	body         io.Reader
	header       []string
}

func (h *harness) do(rq req) *result {
	h.t.Helper()
	r, err := http.NewRequest(rq.method, h.srv.URL+rq.path, rq.body)
	if err != nil {
		h.t.Fatalf("%s %s: %v", rq.method, rq.path, err)
	}
	for i := 0; i+1 < len(rq.header); i += 2 {
		r.Header.Set(rq.header[i], rq.header[i+1])
	}
	resp, err := h.srv.Client().Do(r)
	if err != nil {
		h.t.Fatalf("%s %s: %v", rq.method, rq.path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatalf("%s %s: read the answer: %v", rq.method, rq.path, err)
	}
	res := &result{status: resp.StatusCode, header: resp.Header, body: body}
	h.checkDoc(r, res)
	return res
}

// checkDoc fails the test unless the document declares res's status for the route r
// matched, with res's media type and a schema res's body satisfies.
func (h *harness) checkDoc(r *http.Request, res *result) {
	h.t.Helper()
	_, pattern := h.s.mux.Handler(r)
	what := r.Method + " " + r.URL.Path
	if pattern == "" { // no route: 404 or 405, always an ErrorBody
		h.checkBody(what, res, &oaResponse{Content: map[string]oaMedia{"application/json": {Schema: &oaSchema{Ref: "#/components/schemas/ErrorBody"}}}})
		return
	}
	method, path, _ := strings.Cut(pattern, " ")
	op := h.doc.operation(h.t, method, path)
	resp := h.doc.response(op, res.status)
	if resp == nil {
		h.t.Errorf("%s answered %d, which the document does not declare for %s", what, res.status, pattern)
		return
	}
	h.checkBody(what, res, resp)
}

func (h *harness) checkBody(what string, res *result, resp *oaResponse) {
	h.t.Helper()
	if len(res.body) == 0 {
		if len(resp.Content) != 0 {
			h.t.Errorf("%s answered %d with no body; the document promises %v", what, res.status, resp.Content)
		}
		return
	}
	mt := strings.TrimSpace(strings.Split(res.header.Get("Content-Type"), ";")[0])
	media, ok := resp.Content[mt]
	if !ok {
		h.t.Errorf("%s answered %d as %q; the document has %v", what, res.status, mt, resp.Content)
		return
	}
	if mt != "application/json" {
		return
	}
	var v any
	if err := json.Unmarshal(res.body, &v); err != nil {
		h.t.Errorf("%s answered %d with JSON that does not parse: %v", what, res.status, err)
		return
	}
	if err := h.doc.validate(v, media.Schema, "$"); err != nil {
		h.t.Errorf("%s answered %d with a body the document refuses: %v\n%s", what, res.status, err, res.body)
	}
}
