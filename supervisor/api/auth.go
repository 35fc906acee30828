package api

import (
	"bufio"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"
)

// Tokens maps bearer tokens to tenants. Only sha256 hashes of the tokens are kept (the
// tokens file holds nothing that opens the API), and a lookup compares the hash of the
// presented token with every entry in constant time, without stopping at a match, so
// that timing tells neither a token's bytes nor which entry it matched.
type Tokens struct {
	entries []tokenEntry
	// compare is subtle.ConstantTimeCompare; tests count its calls.
	compare func(x, y []byte) int
}

type tokenEntry struct {
	hash   [sha256.Size]byte
	tenant string
}

// tenantRE is what a tenant may be called: its name becomes a NATS subject token, so no
// dots, wildcards or spaces.
var tenantRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// ValidTenant reports whether name can be a tenant.
func ValidTenant(name string) bool { return tenantRE.MatchString(name) }

// HashToken is the sha256 hex of token, the form a tokens file holds.
func HashToken(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}

// LoadTokens reads a tokens file: one `<sha256-hex-of-token> <tenant>` a line, blank
// lines and `#` comments allowed. A bad line is refused, named by its number, so that a
// typo does not silently lock a tenant out.
func LoadTokens(path string) (*Tokens, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("tokens file: %w", err)
	}
	defer f.Close()
	return ParseTokens(f, path)
}

// ParseTokens reads a tokens file's content from r; name labels its errors.
func ParseTokens(r io.Reader, name string) (*Tokens, error) {
	t := &Tokens{}
	seen := map[[sha256.Size]byte]int{}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		e, ok, err := parseTokenLine(sc.Text())
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", name, n, err)
		}
		if !ok {
			continue
		}
		if first, dup := seen[e.hash]; dup {
			return nil, fmt.Errorf("%s:%d: the same token hash as line %d (one token, one tenant)", name, n, first)
		}
		seen[e.hash] = n
		t.entries = append(t.entries, e)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return t, nil
}

// parseTokenLine parses one line; ok is false for a blank or comment line.
func parseTokenLine(line string) (e tokenEntry, ok bool, err error) {
	line, _, _ = strings.Cut(line, "#")
	fields := strings.Fields(line)
	switch len(fields) {
	case 0:
		return e, false, nil
	case 2:
	default:
		return e, false, fmt.Errorf("%d fields: want `<sha256-hex-of-token> <tenant>`", len(fields))
	}
	b, err := hex.DecodeString(fields[0])
	if err != nil || len(b) != sha256.Size {
		return e, false, fmt.Errorf("%q is not a sha256 hex digest (64 hex digits; see `sha256sum`)", fields[0])
	}
	if !ValidTenant(fields[1]) {
		return e, false, fmt.Errorf("tenant %q: want 1 to 64 of A-Z a-z 0-9 _ -", fields[1])
	}
	copy(e.hash[:], b)
	e.tenant = fields[1]
	return e, true, nil
}

// Len is the number of tokens.
func (t *Tokens) Len() int { return len(t.entries) }

// Tenant is the tenant of token, or false. It looks at every entry whatever matches.
func (t *Tokens) Tenant(token string) (string, bool) {
	compare := t.compare
	if compare == nil {
		compare = subtle.ConstantTimeCompare
	}
	h := sha256.Sum256([]byte(token))
	found := -1
	for i := range t.entries {
		match := compare(h[:], t.entries[i].hash[:])
		found = subtle.ConstantTimeSelect(match, i, found)
	}
	if found < 0 || token == "" {
		return "", false
	}
	return t.entries[found].tenant, true
}

// authenticate is the tenant of r's bearer token; every request is DefaultTenant's when
// the server has no tokens.
func (s *Server) authenticate(r *http.Request) (string, bool) {
	t := s.tokens.Load()
	if t == nil {
		return DefaultTenant, true
	}
	token, ok := bearer(r.Header.Get("Authorization"))
	if !ok {
		return "", false
	}
	return t.Tenant(token)
}

// bearer takes the token out of an Authorization header (the scheme is case-insensitive,
// RFC 7235).
func bearer(h string) (string, bool) {
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}
