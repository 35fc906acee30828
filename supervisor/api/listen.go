package api

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// DefaultSocketMode is the unix socket's mode: the owner and the socket's group may
// connect (the group is how an operator grants access without tokens).
const DefaultSocketMode os.FileMode = 0o660

// staleDialTimeout bounds the probe of an existing socket: a live daemon answers a
// connect at once; a stale socket refuses it at once.
const staleDialTimeout = time.Second

// ListenUnix listens on a unix socket at path with mode (0 = DefaultSocketMode) and group
// gid (negative: the process's own). It replaces a socket left by a daemon that died,
// but never one a live daemon answers on, nor anything that is not a socket. The socket
// is bound in a private directory, given its mode and group, and only then linked into
// place, so nobody can connect while it still has the umask's mode. Closing the listener
// removes the socket.
func ListenUnix(path string, mode os.FileMode, gid int) (net.Listener, error) {
	if mode == 0 {
		mode = DefaultSocketMode
	}
	if err := checkSocketDir(filepath.Dir(path)); err != nil {
		return nil, err
	}
	if err := removeStale(path); err != nil {
		return nil, err
	}
	return bindPrivate(path, mode, gid)
}

func checkSocketDir(dir string) error {
	st, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("socket directory %s does not exist (create it, or let systemd's RuntimeDirectory= do it)", dir)
	case err != nil:
		return fmt.Errorf("socket directory %s: %w", dir, err)
	case !st.IsDir():
		return fmt.Errorf("socket directory %s is not a directory", dir)
	}
	return nil
}

// removeStale removes path if it is a socket nothing answers on.
func removeStale(path string) error {
	st, err := os.Lstat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("socket %s: %w", path, err)
	case st.Mode().Type() != fs.ModeSocket:
		return fmt.Errorf("socket %s: a %s is already there; refusing to replace it", path, describe(st.Mode()))
	}
	c, err := net.DialTimeout("unix", path, staleDialTimeout)
	if err == nil {
		c.Close()
		return fmt.Errorf("socket %s: another process answers on it (is agentboxd already running?)", path)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("socket %s: cannot tell whether it is stale: %w", path, err)
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("remove stale socket %s: %w", path, err)
	}
	return nil
}

func describe(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "directory"
	case m.Type() == fs.ModeSymlink:
		return "symlink"
	case m.IsRegular():
		return "regular file"
	}
	return "file of mode " + m.String()
}

// bindPrivate binds the socket inside a fresh 0700 directory beside path, sets its mode
// and group, and links it to path: link(2), unlike rename(2), refuses to replace a socket
// another daemon made there in the meantime.
func bindPrivate(path string, mode os.FileMode, gid int) (net.Listener, error) {
	dir, err := os.MkdirTemp(filepath.Dir(path), ".sock-")
	if err != nil {
		return nil, fmt.Errorf("socket %s: private directory: %w", path, err)
	}
	defer os.RemoveAll(dir)
	tmp := filepath.Join(dir, "s")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: tmp, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("socket %s: %w", path, err)
	}
	l.SetUnlinkOnClose(false) // tmp goes with dir; Close removes path instead (unixListener)
	if err := placeSocket(tmp, path, mode, gid); err != nil {
		l.Close()
		return nil, err
	}
	return &unixListener{UnixListener: l, path: path}, nil
}

func placeSocket(tmp, path string, mode os.FileMode, gid int) error {
	if err := os.Chmod(tmp, mode); err != nil {
		return fmt.Errorf("socket %s: mode %o: %w", path, mode, err)
	}
	if gid >= 0 {
		if err := os.Chown(tmp, -1, gid); err != nil {
			return fmt.Errorf("socket %s: group %d: %w", path, gid, err)
		}
	}
	if err := os.Link(tmp, path); err != nil {
		return fmt.Errorf("socket %s: %w", path, err)
	}
	return nil
}

// unixListener removes its socket on Close, as net.UnixListener does for the name it
// bound (ours was bound under another name).
type unixListener struct {
	*net.UnixListener
	path string
}

// Close stops listening and removes the socket.
func (l *unixListener) Close() error {
	err := l.UnixListener.Close()
	if rerr := os.Remove(l.path); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) && err == nil {
		err = fmt.Errorf("remove socket %s: %w", l.path, rerr)
	}
	return err
}
