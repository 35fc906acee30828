package sandbox

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/agentbox/agentbox/cgroups"
	"github.com/agentbox/agentbox/internal/testhook"
	"github.com/agentbox/agentbox/internal/units"
	"github.com/agentbox/agentbox/outcome"
)

// task is one Run in progress.
type task struct {
	sb        *Sandbox
	spec      Spec
	limits    Limits // the guest's
	hooks     testhook.Hooks
	began     time.Time
	deadline  time.Time              // of the child being supervised: the compile's, then the run's
	onSlot    func(uid uint32) error // called once the host uid is known (cache scratch ownership)
	compileMS int64
	warnings  []string
	// moduleDigest is the module's sha256 in hex, once digest has computed it.
	moduleDigest string
}

// child is one spawned process, waiting in stage one for its task or running it, and the
// supervisor's ends of its pipes. It holds its host uid and its cgroup until release.
type child struct {
	cmd            *exec.Cmd
	slot           *slot
	group          *cgroups.Group
	spec           *os.File // our end of the spec socket: the task is handed over on it
	result         *os.File // read end
	stdin          *os.File // write end
	stdout, stderr *os.File
	pooled         bool          // started ahead of its task by the warm pool
	cpuBase        time.Duration // the cgroup's CPU use at handoff: a pooled child's start is not its task's
	supervised     bool          // supervise reaps it
}

// spawn runs one child under lim to its verdict and cleans up after it, whatever happens:
// a child from the warm pool where the task can use one, else one started now. A compile
// child's output is kept from the caller's streams, and the test hooks skip it.
func (t *task) spawn(ctx context.Context, w wireSpec, lim Limits, compile bool) Result {
	specBytes, err := encodeSpec(w)
	if err != nil {
		return t.result(outcome.SandboxError, err.Error())
	}
	c := t.sb.pool.take(w.Unsafe)
	if c == nil {
		if c, err = t.sb.startChild(lim, w.Unsafe); err != nil {
			return t.result(outcome.SandboxError, err.Error())
		}
	}
	err = t.handoff(c, w, lim, specBytes, compile)
	if err != nil && c.pooled {
		// A pooled child that died while it waited (the host's OOM killer, a stray kill)
		// cannot take the task; a child started now can.
		c.release()
		if c, err = t.sb.startChild(lim, w.Unsafe); err == nil {
			err = t.handoff(c, w, lim, specBytes, compile)
		}
	}
	if err != nil {
		if c != nil {
			c.release()
		}
		return t.result(outcome.SandboxError, err.Error())
	}
	defer c.release()
	res := t.supervise(ctx, c, lim, compile)
	res.Limits = t.limits
	return res
}

// handoff gives a waiting child its task: the limits into its cgroup first (a pooled
// child waits under the pool's), then, on the spec socket, one byte carrying the module
// and the detached directory trees (SCM_RIGHTS), then the spec, then EOF. Stage one reads
// nothing else before it builds the sandbox, so no task code runs under the pool's limits.
// The OnStart test hook sees the child in between: under its task's limits, before it
// has anything to run.
func (t *task) handoff(c *child, w wireSpec, lim Limits, specBytes []byte, compile bool) error {
	if t.onSlot != nil {
		if err := t.onSlot(c.slot.uid); err != nil {
			return err
		}
	}
	if c.pooled {
		if err := c.group.SetLimits(cgroupLimits(lim, w.Unsafe)); err != nil {
			return fmt.Errorf("limits for pooled child %d: %w", c.cmd.Process.Pid, err)
		}
		st, err := c.group.Stats()
		if err != nil {
			return fmt.Errorf("pooled child %d: %w", c.cmd.Process.Pid, err)
		}
		c.cpuBase = st.CPUUsage
	}
	files, err := t.openBinds(w, c.slot.uid)
	defer func() {
		for _, f := range files {
			f.Close() // the kernel holds them in the message until the child takes them
		}
	}()
	if err != nil {
		return err
	}
	module, err := sealedMemfd("agentbox-module", bytes.NewReader(t.spec.Module))
	if err != nil {
		return err
	}
	files = append([]*os.File{module}, files...)
	fds := make([]int, len(files))
	for i, f := range files {
		fds[i] = int(f.Fd())
	}
	if t.hooks.OnStart != nil && !compile {
		t.hooks.OnStart(c.cmd.Process.Pid)
	}
	// Through the poller (the socket is non-blocking): Fd() would make it blocking, and
	// the spec's write after this would hold an OS thread while the child reads.
	rc, err := c.spec.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Write(func(fd uintptr) bool {
		serr = unix.Sendmsg(int(fd), []byte{taskByte}, unix.UnixRights(fds...), nil, unix.MSG_NOSIGNAL)
		return serr != unix.EAGAIN
	}); err != nil {
		serr = err
	}
	if serr != nil {
		return fmt.Errorf("hand the task to child %d: %w", c.cmd.Process.Pid, serr)
	}
	frame := appendFrame(nil, specBytes)
	if !w.Hot {
		go writeAndClose(c.spec, bytes.NewReader(frame))
		return nil
	}
	// A hot child's stage two reads the same spec as a frame of its own, and the socket
	// stays open for its task (hot_linux.go).
	if _, err := c.spec.Write(appendFrame(frame, specBytes)); err != nil {
		return fmt.Errorf("hand the spec to hot child %d: %w", c.cmd.Process.Pid, err)
	}
	return nil
}

func cgroupLimits(lim Limits, unsafe testhook.Unsafe) cgroups.Limits {
	l := cgroups.Limits{MemoryBytes: int64(lim.MemoryBytes), CPUs: lim.CPUs, Pids: lim.Pids}
	if unsafe.NoPidsLimit {
		l.Pids = 0
	}
	if unsafe.NoMemoryLimit {
		l.MemoryBytes = 0
	}
	return l
}

// startChild starts a child that waits in stage one for its task: in its namespaces and
// its cgroup (under lim), holding a host uid of its own. spawn hands it a task at once;
// the warm pool keeps it until a task comes.
func (sb *Sandbox) startChild(lim Limits, unsafe testhook.Unsafe) (_ *child, err error) {
	c := &child{}
	if c.slot, err = sb.slots.acquire(); err != nil {
		return nil, err
	}
	var closeAfterStart []*os.File
	defer func() {
		for _, f := range closeAfterStart {
			f.Close()
		}
		if err != nil {
			c.release() // c, not the nil returned
		}
	}()
	if c.group, err = sb.cgroups.Create(fmt.Sprintf("task-%d", c.slot.uid), cgroupLimits(lim, unsafe)); err != nil {
		return nil, fmt.Errorf("create cgroup: %w", err)
	}
	spec, err := socketPair()
	if err != nil {
		return nil, err
	}
	c.spec = spec[0]
	closeAfterStart = append(closeAfterStart, spec[1])
	// fdModule's place is held until the handoff puts the module there: the Go runtime of
	// stage one must not take that number for a descriptor of its own first.
	placeholder, err := os.Open(os.DevNull)
	if err != nil {
		return nil, err
	}
	closeAfterStart = append(closeAfterStart, placeholder)
	pipes := []struct {
		parent   **os.File
		childEnd bool // true: the child reads this pipe
	}{{&c.stdin, true}, {&c.stdout, false}, {&c.stderr, false}, {&c.result, false}}
	ends := make([]*os.File, len(pipes))
	for i, p := range pipes {
		r, w, err := os.Pipe()
		if err != nil {
			return nil, fmt.Errorf("pipe: %w", err)
		}
		if p.childEnd {
			*p.parent, ends[i] = w, r
		} else {
			*p.parent, ends[i] = r, w
		}
		closeAfterStart = append(closeAfterStart, ends[i])
	}
	c.cmd = &exec.Cmd{
		Path:  "/proc/self/fd/" + strconv.Itoa(fdExe),
		Args:  childArgs(stageSetup),
		Env:   childEnv(lim),
		Stdin: ends[0], Stdout: ends[1], Stderr: ends[2],
		ExtraFiles:  childFiles(spec[1], ends[3], placeholder, sb.exe),
		SysProcAttr: sysProcAttr(c.slot.uid, unsafe),
	}
	if sb.cgroups.Mode() == cgroups.Unified {
		// CLONE_INTO_CGROUP: the child is born inside its limits. On v1 it waits on the
		// spec socket until AddProc below has placed it.
		dir, err := c.group.OpenDir()
		if err != nil {
			return nil, fmt.Errorf("open cgroup dir: %w", err)
		}
		closeAfterStart = append(closeAfterStart, dir)
		c.cmd.SysProcAttr.UseCgroupFD, c.cmd.SysProcAttr.CgroupFD = true, int(dir.Fd())
	}
	if err := c.cmd.Start(); err != nil {
		c.cmd = nil
		return nil, fmt.Errorf("start sandbox child: %w", err)
	}
	if c.cmd.SysProcAttr.UseCgroupFD {
		return c, nil
	}
	if err := c.group.AddProc(c.cmd.Process.Pid); err != nil {
		return nil, fmt.Errorf("place child %d in its cgroup: %w", c.cmd.Process.Pid, err)
	}
	return c, nil
}

// socketPair is the spec channel: a unix stream socket, since a pipe cannot carry
// descriptors. [0] is ours, [1] the child's fdSpec.
func socketPair() ([2]*os.File, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return [2]*os.File{}, fmt.Errorf("spec socketpair: %w", err)
	}
	// Ours non-blocking, so that os.NewFile puts it in the poller; the child's stays
	// blocking (stage one reads it with plain read and recvmsg calls).
	if err := unix.SetNonblock(fds[0], true); err != nil {
		unix.Close(fds[0])
		unix.Close(fds[1])
		return [2]*os.File{}, fmt.Errorf("spec socketpair: %w", err)
	}
	return [2]*os.File{os.NewFile(uintptr(fds[0]), "spec"), os.NewFile(uintptr(fds[1]), "spec-child")}, nil
}

// release ends the child if no supervise reaped it, then frees its cgroup and its uid, in
// that order: a uid is free only once no process of it is left. A group that cannot be
// deleted may still hold one (stuck in the kernel past the kill's 5 s), so its uid stays
// claimed, on purpose, until this supervisor exits: no later task may share it.
func (c *child) release() {
	if c.cmd != nil && !c.supervised {
		c.cmd.Process.Kill()
		c.cmd.Wait()
	}
	c.closeAll()
	if c.group != nil && c.group.Delete() != nil {
		return
	}
	c.slot.release()
}

// sysProcAttr: new user, pid, mount, net, ipc, uts and cgroup namespaces; root inside is
// the task's own unprivileged host uid; the child dies with the supervisor.
func sysProcAttr(uid uint32, unsafe testhook.Unsafe) *syscall.SysProcAttr {
	attr := &syscall.SysProcAttr{
		Cloneflags: syscall.CLONE_NEWUSER | syscall.CLONE_NEWPID | syscall.CLONE_NEWNS | syscall.CLONE_NEWNET |
			syscall.CLONE_NEWIPC | syscall.CLONE_NEWUTS | syscall.CLONE_NEWCGROUP,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: int(uid), Size: 1}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: int(uid), Size: 1}},
		// setgroups must be allowed in the namespace so that the child can drop the
		// supervisor's supplementary groups (host gid 0 among them) below; harmless after:
		// only the task's own gid is mapped, and stage two may not call setgroups at all.
		GidMappingsEnableSetgroups: true,
		// Become root of the new namespace, i.e. the task's host uid, with no supplementary
		// groups. Without the uid switch the child keeps host root's kuid, unmapped inside,
		// and execs with no capabilities; without the empty group list it keeps ours.
		Credential: &syscall.Credential{Uid: 0, Gid: 0, Groups: []uint32{}},
		Setsid:     true,
		Pdeathsig:  syscall.SIGKILL,
	}
	if unsafe.NoNetNamespace {
		attr.Cloneflags &^= syscall.CLONE_NEWNET
	}
	return attr
}

// childEnv is the child process's whole environment (never the host's): the Go runtime's
// parallelism and soft memory limit sized to the task's limits (never more threads than
// the host has CPUs: each P may need an OS thread, and pids.max counts them).
func childEnv(l Limits) []string {
	return []string{
		"GOMAXPROCS=" + strconv.Itoa(goMaxProcs(l)),
		"GOMEMLIMIT=" + strconv.FormatUint(goMemLimit(l), 10),
	}
}

// goMaxProcs and goMemLimit size a child's Go runtime to its task's limits; a hot child,
// started under the pool's, sets them itself when its task comes.
func goMaxProcs(l Limits) int    { return min(int(math.Ceil(l.CPUs)), runtime.NumCPU()) }
func goMemLimit(l Limits) uint64 { return l.MemoryBytes / 10 * 9 }

// openBinds makes a detached copy of each directory the child will bind (open_tree, in the
// order of wireSpec.bindCount), already nosuid, nodev, noexec and, where asked, read-only;
// a read-write --dir is idmapped to the task's uid (idmap_linux.go). The child attaches
// them with move_mount: a plain bind could not reach a source in our mount namespace, and
// reopening by path would need the task's uid to walk the host path.
func (t *task) openBinds(w wireSpec, uid uint32) ([]*os.File, error) {
	var files []*os.File
	for _, b := range w.bindPoints() {
		f, err := detachedTree(b.host, b.readOnly)
		if err != nil {
			return files, err
		}
		files = append(files, f)
		if b.idmap {
			if err := idmapTree(int(f.Fd()), b.host, uid); err != nil {
				// The filesystem cannot idmap (e.g. tmpfs before Linux 6.3): the guest
				// still gets the directory, writing as its own unprivileged uid.
				t.warnings = append(t.warnings, fmt.Sprintf("--dir %s: %v; the guest writes as an unprivileged uid there", b.host, err))
			}
		}
	}
	return files, nil
}

// childFiles places the child's descriptors from fdSpec to fdExe at their contract numbers.
func childFiles(spec, result, module, exe *os.File) []*os.File {
	files := make([]*os.File, fdExe-fdSpec+1)
	files[fdSpec-fdSpec], files[fdResult-fdSpec], files[fdModule-fdSpec], files[fdExe-fdSpec] = spec, result, module, exe
	return files
}

func detachedTree(path string, readOnly bool) (*os.File, error) {
	fd, err := unix.OpenTree(unix.AT_FDCWD, path, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_RECURSIVE)
	if err != nil {
		return nil, fmt.Errorf("open_tree %s: %w", path, err)
	}
	attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV | unix.MOUNT_ATTR_NOEXEC}
	if readOnly {
		attr.Attr_set |= unix.MOUNT_ATTR_RDONLY
	}
	if err := unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, &attr); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("mount_setattr %s (read-only %t): %w", path, readOnly, err)
	}
	return os.NewFile(uintptr(fd), path), nil
}

func (c *child) closeAll() {
	for _, f := range []*os.File{c.spec, c.result, c.stdin, c.stdout, c.stderr} {
		if f != nil {
			f.Close()
		}
	}
}

// supervise feeds the child, drains its output, enforces the limits from outside, and
// decides the verdict once every process of the task is gone.
func (t *task) supervise(ctx context.Context, c *child, lim Limits, compile bool) Result {
	c.supervised = true
	go t.feedStdin(c.stdin, compile)
	stdout, stderr := t.spec.Stdout, t.spec.Stderr
	if compile {
		stdout, stderr = nil, nil
	}
	overflow := make(chan string, 2)
	out := newCapture(c.stdout, stdout, lim.OutputBytes, "stdout", overflow)
	errs := newCapture(c.stderr, stderr, lim.OutputBytes, "stderr", overflow)
	type report struct {
		posture *Posture
		result  []byte
	}
	resultCh := make(chan report, 1)
	go func() { p, b, _ := readReport(c.result); resultCh <- report{p, b} }()
	waitCh := make(chan error, 1)
	go func() {
		awaitExit(c.cmd.Process.Pid)
		waitCh <- c.cmd.Wait()
	}()

	f := facts{limits: lim}
	f.killedFor, f.killMessage, f.waitErr = t.watch(ctx, c, lim, waitCh, overflow)
	// The pid namespace's init has exited, so the kernel has killed the rest of the task;
	// the cgroup kill below makes sure, then the pipes reach EOF.
	c.group.Kill()
	out.wait()
	errs.wait()
	if f.killedFor == "" {
		// The child can end before watch sees an overflow: a child that sent more than
		// the limit is output_limit whatever it reported (the guest-side cap stops an
		// honest guest at the limit, so only an escape gets here).
		select {
		case stream := <-overflow:
			f.killedFor, f.killMessage = outcome.OutputLimit, fmt.Sprintf("%s passed the output limit of %s", stream, units.FormatSize(lim.OutputBytes))
		default:
		}
	}
	rep := <-resultCh
	if b := rep.result; len(b) > 0 {
		r, err := decodeResult(b)
		if err == nil {
			f.child = &r
		} else {
			f.childErr = err
		}
	}
	stats, statsErr := c.group.Stats()
	f.oomKills, f.pidsHits = stats.OOMKills, stats.PidsLimitHits
	res := decide(f)
	res.Posture = rep.posture
	res.Stdout, res.Stderr = out.bytes(), errs.bytes()
	res.StdoutTruncated = res.StdoutTruncated || out.truncated()
	res.StderrTruncated = res.StderrTruncated || errs.truncated()
	res.Usage = Usage{WallMS: time.Since(t.began).Milliseconds(), PeakMemoryBytes: stats.PeakMemoryBytes}
	if statsErr == nil {
		res.Usage.CPUMS = (stats.CPUUsage - c.cpuBase).Milliseconds()
	}
	if statsErr != nil && res.Outcome == outcome.OK {
		res.Message += fmt.Sprintf(" (usage unavailable: %v)", statsErr)
	}
	return res
}

// watch waits for the child to end, killing the whole cgroup when a limit passes or the
// caller cancels. It returns why we killed ("" if we did not) and the wait error.
func (t *task) watch(ctx context.Context, c *child, lim Limits, waitCh <-chan error, overflow <-chan string) (outcome.Outcome, string, error) {
	timer := time.NewTimer(time.Until(t.deadline))
	defer timer.Stop()
	var tick <-chan time.Time
	if lim.CPUTime > 0 {
		ticker := time.NewTicker(20 * time.Millisecond)
		defer ticker.Stop()
		tick = ticker.C
	}
	kill := func(o outcome.Outcome, msg string) (outcome.Outcome, string, error) {
		c.group.Kill()
		c.cmd.Process.Kill()
		return o, msg, <-waitCh
	}
	for {
		select {
		case err := <-waitCh:
			return "", "", err
		case <-timer.C:
			return kill(outcome.Timeout, fmt.Sprintf("wall-clock limit of %s reached; the task was killed", lim.Timeout))
		case <-ctx.Done():
			return kill(outcome.Cancelled, fmt.Sprintf("cancelled by the caller (%v); the task was killed", context.Cause(ctx)))
		case stream := <-overflow:
			return kill(outcome.OutputLimit, fmt.Sprintf("%s passed the output limit of %s; the task was killed", stream, units.FormatSize(lim.OutputBytes)))
		case <-tick:
			if st, err := c.group.Stats(); err == nil && st.CPUUsage-c.cpuBase >= lim.CPUTime {
				return kill(outcome.CPULimit, fmt.Sprintf("CPU-time limit of %s reached (used %s); the task was killed", lim.CPUTime, (st.CPUUsage-c.cpuBase).Round(time.Millisecond)))
			}
		}
	}
}

// awaitExit returns once the child pid has exited, waiting in the Go runtime's network
// poller (a pidfd turns readable at exit) instead of on an OS thread, so that the Wait
// after it reaps at once. os/exec's Wait alone blocks in waitid(2): one OS thread per
// running task, a thousand threads for the daemon's thousand tasks. The pidfd is a new one
// of our own (pidfd_open, race-free: the child is ours and not reaped yet), opened
// non-blocking: os/exec's own pidfd must stay blocking, and a dup would share the flag
// (its waitid would then answer EAGAIN to a Wait that comes a moment before the child is
// waitable). Where no pidfd or poller can be had it returns at once, and Wait blocks as
// before.
func awaitExit(pid int) {
	fd, err := unix.PidfdOpen(pid, unix.PIDFD_NONBLOCK)
	if err != nil {
		return
	}
	f := os.NewFile(uintptr(fd), "pidfd") // non-blocking: NewFile registers it with the poller
	defer f.Close()
	rc, err := f.SyscallConn()
	if err != nil {
		return
	}
	rc.Read(func(fd uintptr) bool {
		p := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, err := unix.Poll(p, 0)
		return err != nil || n > 0 // exited, or nothing to wait for here: Wait decides
	})
}

// feedStdin copies the task's stdin to the child, or closes it at once for an empty one
// and for the compile-only child, which must leave the stream to the run that follows.
func (t *task) feedStdin(w *os.File, compileOnly bool) {
	if t.spec.Stdin == nil || compileOnly {
		w.Close()
		return
	}
	writeAndClose(w, t.spec.Stdin)
}

func writeAndClose(w *os.File, r io.Reader) {
	io.Copy(w, r)
	w.Close()
}

// capture drains one output pipe: a copy up to the limit for the Result, the same bytes
// streamed to an optional writer, and a signal on overflow when the child sends more than
// the limit (the guest-side cap should stop it first; this is the outer wall).
type capture struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	over bool
	done chan struct{}
}

func newCapture(r *os.File, stream io.Writer, limit uint64, name string, overflow chan<- string) *capture {
	c := &capture{done: make(chan struct{})}
	go c.drain(r, stream, limit, name, overflow)
	return c
}

func (c *capture) drain(r *os.File, stream io.Writer, limit uint64, name string, overflow chan<- string) {
	defer close(c.done)
	defer r.Close()
	chunk := make([]byte, 32<<10)
	for {
		n, err := r.Read(chunk)
		if n > 0 && !c.add(chunk[:n], stream, limit) {
			overflow <- name
			io.Copy(io.Discard, r) // until the kill closes the pipe
			return
		}
		if err != nil {
			return
		}
	}
}

// add keeps what fits under the limit; false once the child has sent more than the limit.
func (c *capture) add(p []byte, stream io.Writer, limit uint64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	room := int(limit) - c.buf.Len()
	keep := p
	if len(keep) > room {
		keep = keep[:room]
		c.over = true
	}
	c.buf.Write(keep)
	if stream != nil && len(keep) > 0 {
		stream.Write(keep)
	}
	return !c.over
}

// wait blocks until the pipe is drained, or gives up after a grace period if a stray
// process outside our kill still held the write end.
func (c *capture) wait() {
	select {
	case <-c.done:
	case <-time.After(2 * time.Second):
	}
}

func (c *capture) bytes() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return bytes.Clone(c.buf.Bytes())
}

func (c *capture) truncated() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.over
}
