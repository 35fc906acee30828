package sandbox

import (
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// sealedMemfd copies r into an anonymous memory file and seals it against every change, so
// the child gets bytes nobody (not even a guest that escapes) can rewrite afterwards. The
// supervisor's own binary travels this way (runc's exeseal, CVE-2019-5736), and so does the
// module.
func sealedMemfd(name string, r io.Reader) (*os.File, error) {
	fd, err := unix.MemfdCreate(name, unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return nil, fmt.Errorf("memfd_create %s: %w", name, err)
	}
	f := os.NewFile(uintptr(fd), name)
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return nil, fmt.Errorf("fill memfd %s: %w", name, err)
	}
	const seals = unix.F_SEAL_SEAL | unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE
	if _, err := unix.FcntlInt(f.Fd(), unix.F_ADD_SEALS, seals); err != nil {
		f.Close()
		return nil, fmt.Errorf("seal memfd %s: %w", name, err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		f.Close()
		return nil, fmt.Errorf("rewind memfd %s: %w", name, err)
	}
	return f, nil
}

// sealedSelf returns a sealed copy of the running binary. The child is re-executed from
// it, never from a path on disk a guest could reach or a host user could swap.
func sealedSelf() (*os.File, error) {
	src, err := os.Open("/proc/self/exe")
	if err != nil {
		return nil, fmt.Errorf("open own binary: %w", err)
	}
	defer src.Close()
	return sealedMemfd("agentbox-exe", src)
}
