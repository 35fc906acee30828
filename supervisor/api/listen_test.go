package api

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestListenUnixModeAndGroup(t *testing.T) {
	gid := os.Getgid()
	if os.Geteuid() == 0 {
		gid = 4242 // root can give the socket any group; others only their own
	}
	path := filepath.Join(t.TempDir(), "d.sock")
	l, err := ListenUnix(path, 0, gid)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Type() != fs.ModeSocket || st.Mode().Perm() != DefaultSocketMode {
		t.Errorf("mode %v, want a socket with %v", st.Mode(), DefaultSocketMode)
	}
	if got := int(st.Sys().(*syscall.Stat_t).Gid); got != gid {
		t.Errorf("group %d, want %d", got, gid)
	}
	checkAnswers(t, l, path)
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("the directory holds %d entries, want the socket only", len(entries))
	}
	l.Close()
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("after Close the socket is still there: %v", err)
	}
}

// checkAnswers connects to path and accepts on l.
func checkAnswers(t *testing.T, l net.Listener, path string) {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		c, err := l.Accept()
		if err == nil {
			c.Close()
		}
		done <- err
	}()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatalf("dial %s: %v", path, err)
	}
	c.Close()
	if err := <-done; err != nil {
		t.Fatalf("accept: %v", err)
	}
}

func TestListenUnixReplacesAStaleSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "d.sock")
	stale, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	stale.SetUnlinkOnClose(false)
	stale.Close() // the socket file stays, as after a kill -9
	l, err := ListenUnix(path, 0o600, -1)
	if err != nil {
		t.Fatalf("over a stale socket: %v", err)
	}
	defer l.Close()
	checkAnswers(t, l, path)
}

func TestListenUnixRefuses(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string) string // returns the path to listen on
		want  string
	}{
		{name: "missing directory", setup: func(t *testing.T, dir string) string {
			return filepath.Join(dir, "nope", "d.sock")
		}, want: "nope does not exist"},
		{name: "a live socket", setup: func(t *testing.T, dir string) string {
			p := filepath.Join(dir, "d.sock")
			l, err := ListenUnix(p, 0, -1)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { l.Close() })
			return p
		}, want: "another process answers on it"},
		{name: "a regular file", setup: func(t *testing.T, dir string) string {
			p := filepath.Join(dir, "d.sock")
			os.WriteFile(p, []byte("keep me"), 0o600)
			return p
		}, want: "a regular file is already there"},
		{name: "a symlink", setup: func(t *testing.T, dir string) string {
			p := filepath.Join(dir, "d.sock")
			os.Symlink(filepath.Join(dir, "elsewhere"), p)
			return p
		}, want: "a symlink is already there"},
		{name: "a file as the directory", setup: func(t *testing.T, dir string) string {
			os.WriteFile(filepath.Join(dir, "f"), nil, 0o600)
			return filepath.Join(dir, "f", "d.sock")
		}, want: "is not a directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := tt.setup(t, t.TempDir())
			l, err := ListenUnix(path, 0, -1)
			if err == nil {
				l.Close()
				t.Fatal("ListenUnix succeeded")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q, want it to say %q", err, tt.want)
			}
		})
	}
}

// TestServerOnUnixSocket: the Server answers over the socket ListenUnix made.
func TestServerOnUnixSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "d.sock")
	l, err := ListenUnix(path, 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: New(newFake(), Options{}).Handler()}
	go srv.Serve(l)
	defer srv.Close()
	client := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", path)
	}}}
	resp, err := client.Get("http://agentboxd/v1/modules")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"modules": []`) {
		t.Errorf("status %d: %s", resp.StatusCode, body)
	}
}
