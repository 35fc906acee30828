// Package client is the Go client of agentboxd's /v1 API, the one the agentbox CLI uses.
// It speaks the wire types of supervisor/task and verdict, so client and server cannot
// drift, and turns every refusal into the API's own *verdict.Error. It takes the host and
// the token as values: reading AGENTBOX_HOST and AGENTBOX_TOKEN is the caller's job, so
// that two clients in one process can talk to two daemons.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/agentbox/agentbox/verdict"
)

// DefaultHost is where agentboxd listens unless told otherwise.
const DefaultHost = "unix:///run/agentbox/agentboxd.sock"

const (
	// unixBase is the URL prefix of requests over a unix socket; the host part is only a
	// name (it ends up in the Host header), the dialer ignores it.
	unixBase = "http://agentboxd"
	// maxErrorBody bounds how much of a refusal is read: an error is a few hundred bytes,
	// and whatever answers on the port may not be agentboxd.
	maxErrorBody = 64 << 10
	// idleConns is how many connections to the daemon are kept open for reuse: a batch
	// waits on many tasks at once, and each long-poll holds one.
	idleConns = 64
	// defaultRetryAfter is the wait on a 429 that did not say how long.
	defaultRetryAfter = time.Second
)

// Client talks to one agentboxd. It is safe for concurrent use.
type Client struct {
	host  string // as given, for messages
	base  string // scheme, authority and path prefix of every request
	token string
	http  *http.Client
	// idle bounds the silence on an event stream (the daemon sends heartbeats far more
	// often); retryCap bounds one wait on a 429's Retry-After; pollFloor is the least time
	// between two long-polls of Wait. Fields, not constants, so that tests can shrink them.
	idle, retryCap, pollFloor time.Duration
}

// New returns a client of the agentboxd at host: "unix:///path.sock" or a bare absolute
// path (DefaultHost when empty), "https://host:port[/prefix]", or "http://" to a loopback
// address only, since plain HTTP would carry the token and every task in clear. A
// non-empty token is sent as a bearer token on every request.
func New(host, token string) (*Client, error) {
	if host == "" {
		host = DefaultHost
	}
	base, tr, err := parseHost(host)
	if err != nil {
		return nil, err
	}
	tr.MaxIdleConnsPerHost = idleConns
	return &Client{host: host, base: base, token: token, http: &http.Client{Transport: tr},
		idle: 90 * time.Second, retryCap: time.Minute, pollFloor: 100 * time.Millisecond}, nil
}

// Host is the daemon's address as given to New.
func (c *Client) Host() string { return c.host }

// parseHost returns the URL prefix and the transport for host.
func parseHost(host string) (string, *http.Transport, error) {
	if strings.HasPrefix(host, "/") {
		return unixHost(host, host)
	}
	u, err := url.Parse(host)
	if err != nil {
		return "", nil, badHost(host, "%v", err)
	}
	if u.User != nil {
		return "", nil, badHost(host, "credentials do not belong in the address: pass the token on its own (AGENTBOX_TOKEN)")
	}
	switch u.Scheme {
	case "unix":
		if u.Host != "" || !path.IsAbs(u.Path) {
			return "", nil, badHost(host, "want unix:// and an absolute path, e.g. %s", DefaultHost)
		}
		return unixHost(host, u.Path)
	case "https":
		return tcpHost(u)
	case "http":
		if !loopback(u.Hostname()) {
			return "", nil, badHost(host, "http:// only to a loopback address (127.0.0.1, ::1, localhost): the token and every task would cross the network in clear; use https://")
		}
		return tcpHost(u)
	}
	return "", nil, badHost(host, "want unix:///path.sock, /path.sock, https://host:port or http://127.0.0.1:port")
}

func badHost(host, format string, args ...any) error {
	return fmt.Errorf("%w %q: %s", ErrBadHost, host, fmt.Sprintf(format, args...))
}

// unixHost dials the socket at p whatever the URL says. No proxy: HTTP_PROXY must not
// redirect a request meant for a local socket.
func unixHost(host, p string) (string, *http.Transport, error) {
	if !path.IsAbs(p) {
		return "", nil, badHost(host, "the socket path must be absolute")
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", p)
	}
	return unixBase, tr, nil
}

// tcpHost keeps scheme, authority and a path prefix (a daemon behind a reverse proxy).
func tcpHost(u *url.URL) (string, *http.Transport, error) {
	if u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return "", nil, badHost(u.String(), "want %s://host:port with no query", u.Scheme)
	}
	base := u.Scheme + "://" + u.Host + strings.TrimSuffix(u.EscapedPath(), "/")
	return base, http.DefaultTransport.(*http.Transport).Clone(), nil
}

// loopback reports whether name stays on this machine.
func loopback(name string) bool {
	if name == "localhost" {
		return true
	}
	ip := net.ParseIP(name)
	return ip != nil && ip.IsLoopback()
}

// call is one request.
type call struct {
	method, path string
	query        url.Values
	body         []byte    // JSON, or nil
	stream       io.Reader // a raw body (module bytes); used when body is nil
	size         int64     // stream's length
	contentType  string
	accept       string
}

func jsonCall(method, p string, v any) (call, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return call{}, fmt.Errorf("encode the body of %s %s: %w", method, p, err)
	}
	return call{method: method, path: p, body: b, contentType: "application/json"}, nil
}

// do sends r and decodes a 2xx answer into out (nil: the body is dropped).
func (c *Client) do(ctx context.Context, r call, out any) error {
	resp, err := c.send(ctx, r)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("%s %s at %s: decode the answer: %w", r.method, r.path, c.host, err)
	}
	return nil
}

// send sends r and returns a 2xx response; anything else is an error, a refusal being a
// *StatusError.
func (c *Client) send(ctx context.Context, r call) (*http.Response, error) {
	req, err := c.request(ctx, r)
	if err != nil {
		return nil, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, c.transportError(ctx, r, err)
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		return nil, c.statusError(r, resp)
	}
	return resp, nil
}

func (c *Client) request(ctx context.Context, r call) (*http.Request, error) {
	u := c.base + r.path
	if len(r.query) > 0 {
		u += "?" + r.query.Encode()
	}
	body, size := r.stream, r.size
	if r.body != nil {
		body, size = bytes.NewReader(r.body), int64(len(r.body))
	}
	req, err := http.NewRequestWithContext(ctx, r.method, u, body)
	if err != nil {
		return nil, fmt.Errorf("%s %s at %s: %w", r.method, r.path, c.host, err)
	}
	if body != nil {
		req.ContentLength = size
		req.Header.Set("Content-Type", r.contentType)
	}
	if r.accept != "" {
		req.Header.Set("Accept", r.accept)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	return req, nil
}

// transportError says what failed: a dial that found no daemon is ErrUnreachable, so
// that the caller can say to start agentboxd; the caller's own end is its context's.
func (c *Client) transportError(ctx context.Context, r call, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%s %s at %s: %w", r.method, r.path, c.host, context.Cause(ctx))
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err // its "Get URL:" prefix repeats what the message says
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return fmt.Errorf("%w at %s: %w", ErrUnreachable, c.host, err)
	}
	return fmt.Errorf("%s %s at %s: %w", r.method, r.path, c.host, err)
}

// statusError decodes the API's error from a refusal. A body that is not one (a proxy's
// page, a daemon too old for the path) still becomes a *verdict.Error, with the code the
// status stands for and the start of the body.
func (c *Client) statusError(r call, resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	e := &StatusError{Status: resp.StatusCode}
	d, ok := retryAfter(resp.Header.Get("Retry-After"), time.Now())
	if !ok && resp.StatusCode == http.StatusTooManyRequests {
		d = defaultRetryAfter
	}
	e.RetryAfter = d
	var body verdict.ErrorBody
	if json.Unmarshal(b, &body) == nil && body.Error != nil && body.Error.Code != "" {
		e.Err = body.Error
		return e
	}
	snippet := strings.TrimSpace(string(b))
	if len(snippet) > 200 {
		snippet = snippet[:200] + "..."
	}
	e.Err = verdict.Errorf(codeFor(resp.StatusCode), "", "", "%s %s at %s: answered %s without an API error: %q",
		r.method, r.path, c.host, resp.Status, snippet)
	return e
}

// codeFor is the Code an HTTP status stands for (the inverse of Code.HTTPStatus).
func codeFor(status int) verdict.Code {
	for _, code := range verdict.Codes {
		if code.HTTPStatus() == status {
			return code
		}
	}
	if status >= 500 {
		return verdict.SetupFailed
	}
	return verdict.InvalidArgument
}

// retryAfter parses a Retry-After: seconds, or an HTTP date; ok is false when it is
// absent or unusable.
func retryAfter(v string, now time.Time) (d time.Duration, ok bool) {
	if secs, err := strconv.ParseInt(strings.TrimSpace(v), 10, 32); err == nil {
		return max(time.Duration(secs)*time.Second, 0), true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}
