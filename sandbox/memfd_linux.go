package sandbox

import (
	"debug/buildinfo"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"

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

// LocateChild returns the agentbox-init beside the running binary when it is a static
// build of the same source, for Config.ChildBinary; "" (and why) when there is none to use,
// and the running binary is the child.
func LocateChild() (path, why string) {
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Sprintf("own path unknown: %v", err)
	}
	p := filepath.Join(filepath.Dir(exe), ChildName)
	if st, err := os.Stat(p); err != nil || !st.Mode().IsRegular() {
		return "", fmt.Sprintf("no %s beside %s", ChildName, exe)
	}
	if err := sameBuild(p); err != nil {
		return "", err.Error()
	}
	if err := checkStaticFile(p); err != nil {
		return "", err.Error()
	}
	return p, ""
}

// sealedBinary returns a sealed copy of the binary at path, once it proved to be a
// static build of the very same source as the running one.
func sealedBinary(path string) (*os.File, error) {
	if err := sameBuild(path); err != nil {
		return nil, err
	}
	if err := checkStaticFile(path); err != nil {
		return nil, err
	}
	src, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open child binary: %w", err)
	}
	defer src.Close()
	return sealedMemfd("agentbox-exe", src)
}

// sameBuild refuses a child binary built from other sources than the running binary: the
// child contract (spec, result, fds) is versioned only by the source it is built from.
func sameBuild(path string) error {
	theirs, err := buildinfo.ReadFile(path)
	if err != nil {
		return fmt.Errorf("%w: child binary %s: not a Go binary with build info: %w", ErrUnsupported, path, err)
	}
	ours, ok := debug.ReadBuildInfo()
	if !ok {
		return fmt.Errorf("%w: this binary has no build info to compare child binary %s with", ErrUnsupported, path)
	}
	// A test binary records no dependencies: compare the wazero version only when we know
	// ours (every binary `go build` makes does).
	withDeps := len(ours.Deps) > 0
	a, b := buildFacts(ours, withDeps), buildFacts(theirs, withDeps)
	if a != b {
		return fmt.Errorf("%w: child binary %s is another build (%s) than this one (%s): build both from one tree (make build)", ErrUnsupported, path, b, a)
	}
	return nil
}

// buildFacts names what makes two builds speak the same child contract.
func buildFacts(info *debug.BuildInfo, deps bool) string {
	facts := []string{"go " + info.GoVersion}
	for _, d := range info.Deps {
		if deps && d.Path == "github.com/tetratelabs/wazero" {
			facts = append(facts, "wazero "+d.Version)
		}
	}
	for _, s := range info.Settings {
		if s.Key == "vcs.revision" || s.Key == "vcs.modified" {
			facts = append(facts, s.Key+"="+s.Value)
		}
	}
	return strings.Join(facts, ", ")
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

// binaryInPlace opens the child binary (path, or the running binary when path is "") for
// Config.ExecInPlace, once it proved to be root's alone to change, static, and for path the
// very same build. Every check reads the opened inode, not the path again, so a rename
// after the open changes nothing; the running binary cannot be written at all while it runs
// (ETXTBSY), and a child binary cannot while any task runs from it.
func binaryInPlace(path string) (*os.File, error) {
	if path == "" {
		path = "/proc/self/exe"
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open child binary: %w", err)
	}
	self := fmt.Sprintf("/proc/self/fd/%d", f.Fd())
	err = checkRootOnly(f)
	if err == nil && path != "/proc/self/exe" {
		err = sameBuild(self)
	}
	if err == nil {
		err = checkStaticFile(self)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// checkRootOnly refuses a binary that a user other than root could rewrite in place.
func checkRootOnly(f *os.File) error {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return fmt.Errorf("stat child binary %s: %w", f.Name(), err)
	}
	switch {
	case st.Mode&unix.S_IFMT != unix.S_IFREG:
		return fmt.Errorf("%w: child binary %s is not a regular file", ErrUnsupported, f.Name())
	case st.Uid != 0 || st.Mode&0o022 != 0:
		return fmt.Errorf("%w: child binary %s is owned by uid %d with mode %o: executed in place, it must be root's alone to change (chown root and chmod go-w it)",
			ErrUnsupported, f.Name(), st.Uid, st.Mode&0o7777)
	}
	return nil
}
