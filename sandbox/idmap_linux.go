package sandbox

import (
	"fmt"
	"os"
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"
)

// A read-write --dir is mounted idmapped (MOUNT_ATTR_IDMAP): inside the task the directory's
// owner appears as the task's own uid, so the guest may write wherever that owner could,
// and what it writes lands on disk owned by that owner, who can read, change and delete it
// without root. Read-only dirs are not idmapped: there the guest keeps the task's own
// unprivileged uid and reads only what anyone may read, so `--dir /etc:ro` never lends it
// root's ownership.

// ownerOf returns the uid and gid that own path.
func ownerOf(path string) (uid, gid uint32, err error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return 0, 0, fmt.Errorf("stat %s: %w", path, err)
	}
	return st.Uid, st.Gid, nil
}

// idmapUserns returns a user namespace whose mapping makes on-disk owner uid/gid appear as
// the task's host id. It is held by a process that never runs: runc's way (usernsfd_linux.go)
// starts it under PTRACE_TRACEME, so it stops at its exec, and kills it once the namespace
// is open.
func idmapUserns(owner, group, task uint32) (*os.File, error) {
	// The tracer of a PTRACE_TRACEME child is this thread; keep it until the child is reaped.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	attr := &syscall.ProcAttr{Sys: &syscall.SysProcAttr{
		Cloneflags:  unix.CLONE_NEWUSER,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: int(owner), HostID: int(task), Size: 1}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: int(group), HostID: int(task), Size: 1}},
		Ptrace:      true,
		Pdeathsig:   syscall.SIGKILL,
	}}
	pid, err := syscall.ForkExec("/proc/self/exe", []string{"agentbox-idmap"}, attr)
	if err != nil {
		return nil, fmt.Errorf("start idmap holder: %w", err)
	}
	defer reap(pid)
	ns, err := os.Open(fmt.Sprintf("/proc/%d/ns/user", pid))
	if err != nil {
		return nil, fmt.Errorf("open idmap user namespace: %w", err)
	}
	return ns, nil
}

// reap kills and waits for pid until it is gone: a traced child reports its stop first.
func reap(pid int) {
	unix.Kill(pid, unix.SIGKILL)
	for {
		var ws unix.WaitStatus
		_, err := unix.Wait4(pid, &ws, 0, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil || ws.Exited() || ws.Signaled() {
			return
		}
	}
}

// idmapTree makes the detached mount tree fd show path's owner as the task's uid.
func idmapTree(fd int, path string, task uint32) error {
	owner, group, err := ownerOf(path)
	if err != nil {
		return err
	}
	ns, err := idmapUserns(owner, group, task)
	if err != nil {
		return err
	}
	defer ns.Close()
	attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_IDMAP, Userns_fd: uint64(ns.Fd())}
	if err := unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, &attr); err != nil {
		return fmt.Errorf("idmap %s (owner %d:%d as task uid %d): %w", path, owner, group, task, err)
	}
	return nil
}
