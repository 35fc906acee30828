package load

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/agentbox/agentbox/internal/privtest"
	"github.com/agentbox/agentbox/internal/syncbuf"
	"github.com/agentbox/agentbox/supervisor/client"
)

// daemon is one agentboxd process in a temporary directory. The test's API client reaches
// it through a proxy, so that the test can close every connection it holds and a leak
// check counts only what the daemon keeps on its own (the client keeps idle connections
// open, and the daemon's server has no idle timeout).
type daemon struct {
	t      *testing.T
	dir    string
	socket string
	cmd    *exec.Cmd
	exited chan struct{}
	log    *syncbuf.Buffer
	proxy  *proxy
	plain  *http.Client // for /metrics and /readyz: no keep-alive, so it leaves nothing open
}

// startDaemon starts agentboxd with args after the temporary dirs, and waits until
// /readyz is green. Its TMPDIR is its own, so that scratch it leaves there can be seen.
func startDaemon(t *testing.T, args ...string) *daemon {
	t.Helper()
	privtest.RequireRoot(t)
	dir := t.TempDir()
	d := &daemon{t: t, dir: dir, socket: filepath.Join(dir, "agentboxd.sock"), log: &syncbuf.Buffer{}}
	if err := os.Mkdir(d.tmp(), 0o755); err != nil {
		t.Fatal(err)
	}
	all := append([]string{"--state-dir", filepath.Join(dir, "state"), "--socket", d.socket,
		"--cache-dir", d.cacheDir(), "--host-id", "load-host", "--grace", "1s"}, args...)
	d.cmd = exec.Command(filepath.Join(bin, "agentboxd"), all...)
	d.cmd.Env = append(os.Environ(), "TMPDIR="+d.tmp())
	d.cmd.Stdout, d.cmd.Stderr = d.log, d.log
	d.plain = &http.Client{Transport: &http.Transport{DisableKeepAlives: true, DialContext: d.dial}}
	if err := d.cmd.Start(); err != nil {
		t.Fatalf("start agentboxd: %v", err)
	}
	d.exited = make(chan struct{})
	go func() { d.cmd.Wait(); close(d.exited) }()
	t.Cleanup(d.stop)
	d.waitReady()
	d.proxy = startProxy(t, filepath.Join(dir, "proxy.sock"), d.socket)
	return d
}

func (d *daemon) tmp() string      { return filepath.Join(d.dir, "tmp") }
func (d *daemon) cacheDir() string { return filepath.Join(d.dir, "cache") }
func (d *daemon) pid() int         { return d.cmd.Process.Pid }

func (d *daemon) dial(ctx context.Context, _, _ string) (net.Conn, error) {
	var dl net.Dialer
	return dl.DialContext(ctx, "unix", d.socket)
}

// waitReady polls /readyz until it answers 200, or the daemon exits.
func (d *daemon) waitReady() {
	d.t.Helper()
	deadline := time.After(3 * time.Minute)
	for {
		if d.status("/readyz") == http.StatusOK {
			return
		}
		select {
		case <-d.exited:
			d.t.Fatalf("agentboxd exited before it was ready:\n%s", d.log)
		case <-deadline:
			d.t.Fatalf("agentboxd not ready in 3m:\n%s", d.log)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (d *daemon) status(path string) int {
	resp, err := d.plain.Get("http://agentboxd" + path)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// metrics returns the text of GET /metrics.
func (d *daemon) metrics() string {
	d.t.Helper()
	resp, err := d.plain.Get("http://agentboxd/metrics")
	if err != nil {
		d.t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		d.t.Fatalf("GET /metrics: %v", err)
	}
	return string(body)
}

// metric sums every series of the metric name in /metrics (all its label values).
func (d *daemon) metric(name string) float64 {
	d.t.Helper()
	return metricSum(d.metrics(), name)
}

func metricSum(body, name string) float64 {
	var sum float64
	for _, line := range strings.Split(body, "\n") {
		rest, ok := strings.CutPrefix(line, name)
		if !ok || (rest != "" && rest[0] != ' ' && rest[0] != '{') {
			continue
		}
		if i := strings.LastIndexByte(rest, ' '); i >= 0 {
			v, err := strconv.ParseFloat(rest[i+1:], 64)
			if err == nil {
				sum += v
			}
		}
	}
	return sum
}

// client returns a client of the daemon through the proxy.
func (d *daemon) client() *client.Client {
	d.t.Helper()
	c, err := client.New("unix://"+d.proxy.path, "")
	if err != nil {
		d.t.Fatal(err)
	}
	return c
}

// stop ends the daemon with SIGTERM and shows its log if the test failed.
func (d *daemon) stop() {
	if d.proxy != nil {
		d.proxy.close()
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.exited:
	case <-time.After(2 * time.Minute):
		d.cmd.Process.Kill()
		<-d.exited
		d.t.Errorf("agentboxd did not stop on SIGTERM in 2m")
	}
	if d.t.Failed() {
		d.t.Logf("agentboxd log (last 64 KiB):\n%s", tail(d.log.String(), 64<<10))
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// proxy forwards unix-socket connections to the daemon and can close them all.
type proxy struct {
	path, target string
	ln           net.Listener
	mu           sync.Mutex
	conns        map[net.Conn]struct{}
}

func startProxy(t *testing.T, path, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{path: path, target: target, ln: ln, conns: map[net.Conn]struct{}{}}
	go p.serve()
	return p
}

func (p *proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		go p.forward(c)
	}
}

// forward copies both ways between c and a new connection to the daemon; when either
// side ends, both are closed.
func (p *proxy) forward(c net.Conn) {
	u, err := net.Dial("unix", p.target)
	if err != nil {
		c.Close()
		return
	}
	p.track(c, u)
	done := make(chan struct{}, 2)
	cp := func(dst, src net.Conn) { io.Copy(dst, src); done <- struct{}{} }
	go cp(u, c)
	go cp(c, u)
	<-done
	c.Close()
	u.Close()
	<-done
	p.untrack(c, u)
}

func (p *proxy) track(cs ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range cs {
		p.conns[c] = struct{}{}
	}
}

func (p *proxy) untrack(cs ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range cs {
		delete(p.conns, c)
	}
}

// closeAll closes every connection open through the proxy: the client's idle ones too.
func (p *proxy) closeAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
	}
}

func (p *proxy) close() {
	p.ln.Close()
	p.closeAll()
}
