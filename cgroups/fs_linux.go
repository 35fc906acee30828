package cgroups

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// writeFile writes one value to a cgroup control file. It never creates the
// file: a missing control file means a missing controller, and should say so.
func writeFile(path, data string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", path, err)
	}
	defer f.Close()
	if _, err := f.WriteString(data); err != nil {
		return fmt.Errorf("write %q to %s: %w", data, path, err)
	}
	return f.Close()
}

// writeIfExists writes like writeFile but treats a missing file as success,
// for knobs only some kernels have (memory.swap.max, memory.oom.group…).
func writeIfExists(path, data string) error {
	err := writeFile(path, data)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// exists reports whether a control file exists.
func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// readUint reads a single unsigned integer file such as cpuacct.usage.
func readUint(path string) (uint64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", path, err)
	}
	s := strings.TrimSpace(string(b))
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("parse %s value %q: %w", path, s, err)
	}
	return v, nil
}

// readKey reads the value of key in a flat-keyed file ("key value" lines,
// like memory.events or cpu.stat). A missing key reads as 0: kernels add
// keys over time, and an absent counter has counted nothing.
func readKey(path, key string) (uint64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", path, err)
	}
	s := bufio.NewScanner(bytes.NewReader(b))
	for s.Scan() {
		k, v, ok := strings.Cut(s.Text(), " ")
		if !ok || k != key {
			continue
		}
		n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("parse %s key %s value %q: %w", path, key, v, err)
		}
		return n, nil
	}
	return 0, nil
}

// readPids reads a cgroup.procs file.
func readPids(path string) ([]int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	var pids []int
	for _, f := range strings.Fields(string(b)) {
		pid, err := strconv.Atoi(f)
		if err != nil {
			return nil, fmt.Errorf("parse pid %q in %s: %w", f, path, err)
		}
		pids = append(pids, pid)
	}
	return pids, nil
}

// subtree lists dir and every cgroup beneath it, parents before children.
// A guest cannot make child groups, but a sweep must not be stopped by one.
func subtree(dir string) ([]string, error) {
	var dirs []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			dirs = append(dirs, path)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("walk cgroup %s: %w", dir, err)
	}
	return dirs, nil
}

// procsIn lists the processes in each of dirs and their descendants, sorted
// and without duplicates (v1 lists a process once per hierarchy). Missing
// directories hold no processes.
func procsIn(dirs []string) ([]int, error) {
	var all []int
	for _, d := range dirs {
		sub, err := subtree(d)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		for _, s := range sub {
			pids, err := readPids(filepath.Join(s, "cgroup.procs"))
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				return nil, err
			}
			all = append(all, pids...)
		}
	}
	slices.Sort(all)
	return slices.Compact(all), nil
}

// mkdirGroup creates one group directory; an existing one is an error,
// because reusing it could inherit a stranger's processes and limits.
func mkdirGroup(dir string) error {
	if err := os.Mkdir(dir, 0o755); err != nil {
		return fmt.Errorf("create cgroup %s: %w", dir, err)
	}
	return nil
}

// mkdirParent creates a parent directory if it is not there yet.
func mkdirParent(dir string) error {
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("create cgroup parent %s: %w", dir, err)
	}
	return nil
}

// rmdirTree removes dir and every cgroup beneath it, children first. A
// cgroup whose last processes are still exiting refuses rmdir with EBUSY for
// a moment, so that is retried until the deadline. A missing dir is success.
func rmdirTree(dir string, deadline time.Time) error {
	sub, err := subtree(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for i := len(sub) - 1; i >= 0; i-- {
		if err := rmdirRetry(sub[i], deadline); err != nil {
			return err
		}
	}
	return nil
}

// rmdirRetry removes one empty cgroup directory, retrying EBUSY.
func rmdirRetry(dir string, deadline time.Time) error {
	for {
		err := unix.Rmdir(dir)
		switch {
		case err == nil, errors.Is(err, unix.ENOENT):
			return nil
		case errors.Is(err, unix.EBUSY) && time.Now().Before(deadline):
			time.Sleep(5 * time.Millisecond)
		default:
			return fmt.Errorf("remove cgroup %s: %w", dir, err)
		}
	}
}

// writePid moves pid into the cgroup dir.
func writePid(dir string, pid int) error {
	return writeFile(filepath.Join(dir, "cgroup.procs"), strconv.Itoa(pid))
}

// alive reports whether a process with this pid exists (EPERM: it exists
// but is not ours to signal).
func alive(pid int) bool {
	err := unix.Kill(pid, 0)
	return err == nil || errors.Is(err, unix.EPERM)
}

// sigkillAll sends SIGKILL to each pid; processes that are already gone are
// not an error.
func sigkillAll(pids []int) error {
	var errs []error
	for _, pid := range pids {
		if err := unix.Kill(pid, unix.SIGKILL); err != nil && !errors.Is(err, unix.ESRCH) {
			errs = append(errs, fmt.Errorf("kill pid %d: %w", pid, err))
		}
	}
	return errors.Join(errs...)
}
