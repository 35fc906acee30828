package wasm

import (
	"fmt"
	"os"

	"github.com/tetratelabs/wazero"
	experimentalsys "github.com/tetratelabs/wazero/experimental/sys"
	"github.com/tetratelabs/wazero/experimental/sysfs"
)

// noSymlinkFS refuses path_symlink. wazero stores the link target verbatim and the host
// follows it on open, so a guest could plant "link -> ../../etc" inside a writable preopen
// and read or write outside it. Symlinks already present in a host directory are the
// host's choice; the guest may not make new ones.
type noSymlinkFS struct {
	experimentalsys.FS
}

// Symlink implements experimentalsys.FS by refusing.
func (noSymlinkFS) Symlink(_, _ string) experimentalsys.Errno {
	return experimentalsys.EPERM
}

// fsConfig mounts the preopens, each as a directory the guest cannot leave by "..", by a
// new symlink, or (if ReadOnly) write to. A host path that is not a directory is an error
// of ours, not the guest's.
func fsConfig(preopens []Preopen) (wazero.FSConfig, error) {
	fsc := wazero.NewFSConfig()
	for _, p := range preopens {
		info, err := os.Stat(p.HostPath)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrPreopen, p.HostPath, err)
		}
		if !info.IsDir() {
			return nil, fmt.Errorf("%w: %s is not a directory", ErrPreopen, p.HostPath)
		}
		fsc = fsc.(sysfs.FSConfig).WithSysFSMount(preopenFS(p), p.GuestPath)
	}
	return fsc, nil
}

// preopenFS builds the file system for one preopen.
func preopenFS(p Preopen) experimentalsys.FS {
	fs := sysfs.DirFS(p.HostPath)
	if p.ReadOnly {
		fs = &sysfs.ReadFS{FS: fs}
	}
	return noSymlinkFS{FS: fs}
}
