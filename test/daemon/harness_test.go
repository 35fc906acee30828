// Package daemon tests agentboxd end to end: the real binary on a real unix socket, with
// the real sandbox (its children spawned from the real agentbox binary beside it) and the
// real embedded JetStream, driven through the real client. Nothing is mocked.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/agentbox/agentbox/internal/buildtest"
	"github.com/agentbox/agentbox/internal/privtest"
	"github.com/agentbox/agentbox/internal/syncbuf"
	"github.com/agentbox/agentbox/supervisor/api"
	"github.com/agentbox/agentbox/supervisor/client"
	"github.com/agentbox/agentbox/supervisor/task"
)

// bin holds agentboxd, agentbox and agentbox-init, built once for the package from this
// tree (internal/buildtest).
var bin string

func TestMain(m *testing.M) { os.Exit(buildtest.Main(m, "agentbox-daemon-test-", &bin)) }

// daemon is one agentboxd process; its state dir survives restarts.
type daemon struct {
	t      *testing.T
	dir    string
	socket string
	args   []string
	cmd    *exec.Cmd
	exited chan struct{}
	log    *syncbuf.Buffer
	logs   []string // of earlier incarnations
}

type options struct {
	tokens map[string]string // token -> tenant
	args   []string
}

// startDaemon starts agentboxd in a fresh state dir and waits until /readyz is green.
func startDaemon(t *testing.T, o options) *daemon {
	t.Helper()
	privtest.RequireRoot(t)
	dir := t.TempDir()
	d := &daemon{t: t, dir: dir, socket: filepath.Join(dir, "agentboxd.sock")}
	d.args = []string{"--state-dir", filepath.Join(dir, "state"), "--socket", d.socket,
		"--cache-dir", filepath.Join(dir, "cache"), "--host-id", "test-host", "--grace", "1s"}
	if o.tokens != nil {
		var b strings.Builder
		for tok, tenant := range o.tokens {
			fmt.Fprintf(&b, "%s %s\n", api.HashToken(tok), tenant)
		}
		path := filepath.Join(dir, "tokens")
		if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
			t.Fatal(err)
		}
		d.args = append(d.args, "--tokens", path)
	}
	d.args = append(d.args, o.args...)
	d.start()
	t.Cleanup(d.stop)
	return d
}

func (d *daemon) start() {
	d.t.Helper()
	d.log = &syncbuf.Buffer{}
	d.cmd = exec.Command(filepath.Join(bin, "agentboxd"), d.args...)
	d.cmd.Stdout, d.cmd.Stderr = d.log, d.log
	if err := d.cmd.Start(); err != nil {
		d.t.Fatalf("start agentboxd: %v", err)
	}
	d.exited = make(chan struct{})
	go func() { d.cmd.Wait(); close(d.exited) }()
	d.waitReady()
}

// waitReady polls /readyz until it answers 200, or the daemon exits.
func (d *daemon) waitReady() {
	d.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	for {
		if d.get("/readyz") == http.StatusOK {
			return
		}
		select {
		case <-d.exited:
			d.t.Fatalf("agentboxd exited before it was ready:\n%s", d.log)
		case <-ctx.Done():
			d.t.Fatalf("agentboxd not ready in 3m:\n%s", d.log)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// get answers the status of GET path on the socket (0 when nothing answers).
func (d *daemon) get(path string) int {
	resp, err := d.http().Get("http://agentboxd" + path)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// http is a plain HTTP client over the daemon's socket, for what the API client does not
// cover (health, metrics, raw bad requests).
func (d *daemon) http() *http.Client {
	return &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var dl net.Dialer
		return dl.DialContext(ctx, "unix", d.socket)
	}}}
}

// client returns a client of this daemon with token.
func (d *daemon) client(token string) *client.Client {
	d.t.Helper()
	c, err := client.New("unix://"+d.socket, token)
	if err != nil {
		d.t.Fatal(err)
	}
	return c
}

// signal sends sig and waits for the process to end.
func (d *daemon) signal(sig syscall.Signal) {
	d.t.Helper()
	if d.cmd == nil {
		return
	}
	d.cmd.Process.Signal(sig)
	select {
	case <-d.exited:
	case <-time.After(2 * time.Minute):
		d.cmd.Process.Kill()
		<-d.exited
		d.t.Errorf("agentboxd did not stop on %v in 2m", sig)
	}
	d.logs = append(d.logs, d.log.String())
	d.cmd = nil
}

// crash kills the daemon with SIGKILL: no drain, no cleanup.
func (d *daemon) crash() { d.signal(syscall.SIGKILL) }

func (d *daemon) stop() {
	d.signal(syscall.SIGTERM)
	if d.t.Failed() {
		for i, l := range d.logs {
			d.t.Logf("agentboxd log, incarnation %d:\n%s", i+1, l)
		}
	}
}

// restart starts a new incarnation on the same state dir.
func (d *daemon) restart() {
	d.t.Helper()
	d.start()
}

// push uploads a module file and returns its digest.
func push(t *testing.T, c *client.Client, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	m, err := c.PushModule(context.Background(), f, st.Size())
	if err != nil {
		t.Fatalf("push %s: %v", path, err)
	}
	return m.Digest
}

// waitFinal waits for a task's final record.
func waitFinal(t *testing.T, c *client.Client, id string) task.Task {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	tk, err := c.Wait(ctx, id)
	if err != nil {
		t.Fatalf("wait %s: %v", id, err)
	}
	if !tk.Final() {
		t.Fatalf("task %s not final after 3m: %s", id, tk.State)
	}
	return tk
}

// isUnreachable reports whether err says the daemon was not there (it was being killed).
func isUnreachable(err error) bool { return errors.Is(err, client.ErrUnreachable) }

const (
	helloModule = "../../examples/hello/hello.wasm"
	countModule = "../../testdata/modules/count.wasm"
	loopModule  = "../../testdata/modules/loop.wasm"
	exit3Module = "../../testdata/modules/exit3.wasm"
	trapModule  = "../../testdata/modules/trap.wasm"
)
