package api

import (
	"crypto/subtle"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func tokensFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadTokens(t *testing.T) {
	ha, hb := HashToken("alpha"), HashToken("bravo")
	tests := []struct {
		name    string
		content string
		tenants map[string]string // token -> tenant; "" = refused
		wantErr string
	}{
		{name: "two tenants with comments and blanks",
			content: "# tokens\n\n" + ha + " team-a\n  " + hb + "\tteam_b   # bravo's laptop\n",
			tenants: map[string]string{"alpha": "team-a", "bravo": "team_b", "charlie": "", "": ""}},
		{name: "uppercase hex", content: strings.ToUpper(ha) + " a\n", tenants: map[string]string{"alpha": "a"}},
		{name: "empty file refuses every token", content: "", tenants: map[string]string{"alpha": ""}},
		{name: "one field", content: "# x\n" + ha + "\n", wantErr: ":2: 1 fields"},
		{name: "three fields", content: ha + " a b\n", wantErr: ":1: 3 fields"},
		{name: "not hex", content: strings.Repeat("z", 64) + " a\n", wantErr: ":1: \"zzzz"},
		{name: "short digest", content: ha[:62] + " a\n", wantErr: "not a sha256 hex digest"},
		{name: "tenant with a dot", content: ha + " a.b\n", wantErr: `:1: tenant "a.b"`},
		{name: "tenant with a wildcard", content: ha + " a*\n", wantErr: `tenant "a*"`},
		{name: "tenant too long", content: ha + " " + strings.Repeat("t", 65) + "\n", wantErr: "tenant"},
		{name: "same hash twice", content: ha + " a\n\n" + ha + " b\n", wantErr: ":3: the same token hash as line 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			toks, err := LoadTokens(tokensFile(t, tt.content))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for tok, want := range tt.tenants {
				got, ok := toks.Tenant(tok)
				if got != want || ok != (want != "") {
					t.Errorf("token %q: tenant %q %v, want %q", tok, got, ok, want)
				}
			}
		})
	}
}

func TestLoadTokensNamesTheFile(t *testing.T) {
	_, err := LoadTokens(filepath.Join(t.TempDir(), "missing"))
	if err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("error %v does not name the file", err)
	}
}

func TestHashTokenIsSha256sum(t *testing.T) {
	// printf %s secret | sha256sum
	if got := HashToken("secret"); got != "2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b" {
		t.Errorf("HashToken(secret) = %s", got)
	}
}

// TestTenantComparesEveryEntry: the lookup calls the constant-time compare once per
// entry whichever entry matches, or none: no early exit tells which one did.
func TestTenantComparesEveryEntry(t *testing.T) {
	var content strings.Builder
	tokens := []string{"t0", "t1", "t2", "t3", "t4"}
	for i, tok := range tokens {
		content.WriteString(HashToken(tok) + " tenant" + string(rune('0'+i)) + "\n")
	}
	toks, err := ParseTokens(strings.NewReader(content.String()), "test")
	if err != nil {
		t.Fatal(err)
	}
	calls := 0
	toks.compare = func(x, y []byte) int { calls++; return subtle.ConstantTimeCompare(x, y) }
	for _, tok := range []string{"t0", "t4", "t2", "nobody", ""} {
		calls = 0
		toks.Tenant(tok)
		if calls != len(tokens) {
			t.Errorf("token %q: %d compares, want %d", tok, calls, len(tokens))
		}
	}
}

func TestAuth(t *testing.T) {
	toks, err := LoadTokens(tokensFile(t, HashToken("alpha")+" team-a\n"+HashToken("bravo")+" team-b\n"))
	if err != nil {
		t.Fatal(err)
	}
	const wantBody = "{\n  \"error\": {\n    \"code\": \"unauthenticated\",\n    \"message\": \"missing or invalid token\"\n  }\n}\n"
	tests := []struct {
		name   string
		auth   string
		path   string
		status int
		tenant string
	}{
		{name: "no header", path: "/v1/modules", status: 401},
		{name: "wrong token", auth: "Bearer charlie", path: "/v1/modules", status: 401},
		{name: "empty token", auth: "Bearer ", path: "/v1/modules", status: 401},
		{name: "basic scheme", auth: "Basic YWxwaGE6", path: "/v1/modules", status: 401},
		{name: "the token without a scheme", auth: "alpha", path: "/v1/modules", status: 401},
		{name: "401 before a bad query", path: "/v1/tasks?state=lost", status: 401},
		{name: "401 before a bad id", path: "/v1/tasks/a.b", status: 401},
		{name: "401 on a missing task", auth: "Bearer charlie", path: "/v1/tasks/t1", status: 401},
		{name: "tenant a", auth: "Bearer alpha", path: "/v1/modules", status: 200, tenant: "team-a"},
		{name: "tenant b, any case scheme", auth: "bearer bravo", path: "/v1/modules", status: 200, tenant: "team-b"},
		{name: "healthz needs none", path: "/healthz", status: 200},
		{name: "readyz needs none", path: "/readyz", status: 200},
		{name: "metrics needs none", path: "/metrics", status: 404},
		{name: "the document needs one", path: "/v1/openapi.json", status: 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, Options{Tokens: toks})
			rq := req{method: "GET", path: tt.path}
			if tt.auth != "" {
				rq.header = []string{"Authorization", tt.auth}
			}
			res := h.do(rq)
			if res.status != tt.status {
				t.Fatalf("status %d, want %d: %s", res.status, tt.status, res.body)
			}
			if tt.status == 401 {
				checkUnauthenticated(t, res, wantBody)
			}
			if tt.tenant != "" && h.f.lastTenant() != tt.tenant {
				t.Errorf("backend saw tenant %q, want %q", h.f.lastTenant(), tt.tenant)
			}
		})
	}
}

// checkUnauthenticated: the body is the fixed one and the headers say nothing more than
// the scheme.
func checkUnauthenticated(t *testing.T, res *result, wantBody string) {
	t.Helper()
	if string(res.body) != wantBody {
		t.Errorf("body %q, want %q", res.body, wantBody)
	}
	if got := res.header.Get("WWW-Authenticate"); got != "Bearer" {
		t.Errorf("WWW-Authenticate %q, want Bearer", got)
	}
	for k := range res.header {
		switch http.CanonicalHeaderKey(k) {
		case "Www-Authenticate", "Content-Type", "Content-Length", "Date", "X-Content-Type-Options":
		default:
			t.Errorf("401 carries header %s", k)
		}
	}
}

// TestTenantsAreIsolated: one tenant's module is not found by another.
func TestTenantsAreIsolated(t *testing.T) {
	toks, _ := LoadTokens(tokensFile(t, HashToken("alpha")+" team-a\n"+HashToken("bravo")+" team-b\n"))
	h := newHarness(t, Options{Tokens: toks})
	res := h.do(req{method: "POST", path: "/v1/modules", body: strings.NewReader(string(wasmBytes)), header: []string{"Authorization", "Bearer alpha"}})
	if res.status != 201 {
		t.Fatalf("upload: %d %s", res.status, res.body)
	}
	digest := h.digestOf(res)
	if r := h.do(req{method: "GET", path: "/v1/modules/" + digest, header: []string{"Authorization", "Bearer alpha"}}); r.status != 200 {
		t.Errorf("owner: status %d", r.status)
	}
	if r := h.do(req{method: "GET", path: "/v1/modules/" + digest, header: []string{"Authorization", "Bearer bravo"}}); r.status != 404 {
		t.Errorf("other tenant: status %d, want 404", r.status)
	}
}

func (h *harness) digestOf(res *result) string {
	i := strings.Index(string(res.body), `"digest": "`)
	if i < 0 {
		h.t.Fatalf("no digest in %s", res.body)
	}
	return string(res.body[i+11 : i+11+64])
}

// TestSetTokensSwapsLive: a reload takes effect on the next request; nil never opens the
// API.
func TestSetTokensSwapsLive(t *testing.T) {
	old, _ := LoadTokens(tokensFile(t, HashToken("old")+" a\n"))
	next, _ := LoadTokens(tokensFile(t, HashToken("new")+" a\n"))
	h := newHarness(t, Options{Tokens: old})
	status := func(token string) int {
		return h.do(req{method: "GET", path: "/v1/modules", header: []string{"Authorization", "Bearer " + token}}).status
	}
	if s := status("old"); s != 200 {
		t.Fatalf("old token before the swap: %d", s)
	}
	h.s.SetTokens(next)
	if s, n := status("old"), status("new"); s != 401 || n != 200 {
		t.Errorf("after the swap: old %d (want 401), new %d (want 200)", s, n)
	}
	h.s.SetTokens(nil)
	if s := h.do(req{method: "GET", path: "/v1/modules"}).status; s != 401 {
		t.Errorf("after SetTokens(nil), no token: %d, want 401", s)
	}
	if s := status("new"); s != 401 {
		t.Errorf("after SetTokens(nil): %d, want 401", s)
	}
}
