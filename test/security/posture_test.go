//go:build linux

package security

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/agentbox/agentbox/internal/privtest"
	"github.com/agentbox/agentbox/internal/testhook"
	"github.com/agentbox/agentbox/outcome"
	"github.com/agentbox/agentbox/sandbox"
)

// stateDeadline is how long a test waits for a state that normally comes within
// milliseconds (a child in stage two, a line on its stdout, a task gone after a kill). It
// is generous on purpose: only a state that never comes fails, never a slow machine (the
// cgroup-v2 VM runs under software emulation, several times slower).
const stateDeadline = 2 * time.Minute

// TestSandboxPosture checks, from the host and in the manner of gVisor's sandbox posture
// test, what the kernel says about a running sandbox child once it has reached stage two
// (after the full setup, seccomp on): identity, capabilities, no_new_privs, seccomp on every
// thread, namespaces, root, mounts, descriptors, rlimits, session, OOM score, environment,
// executable, cgroup membership and limits. It checks every thread again after the payload
// has started more OS threads (threads born after the filter must carry it too).
func TestSandboxPosture(t *testing.T) {
	privtest.RequireRoot(t)
	sb := newPostureSandbox(t)
	a := startIdle(t, sb, postureLimits)
	b := startIdle(t, sb, postureLimits) // a concurrent task: its identity must differ
	view := readCgroupView(t)
	if got := view.unified; got != (sb.CgroupMode() == "v2") {
		t.Fatalf("this test reads cgroup unified=%t, the sandbox drives %s", got, sb.CgroupMode())
	}

	t.Run("distinct tasks", func(t *testing.T) { checkDistinct(t, a, b) })
	t.Run("stage two", func(t *testing.T) { checkPosture(t, a, view, 0) })

	before := len(threadIDs(t, a.pid))
	a.stdin.Write([]byte{'+'})
	a.out.waitForOrEnd(t, fmt.Sprintf("posture: threads %d\n", postureThreadsPerByte), a.done)
	// Each locked goroutine holds a thread of its own; a thread the runtime had idle may
	// take one of them, so fewer than that many may be new, but some must be.
	if after := len(threadIDs(t, a.pid)); after <= before || after < 1+postureThreadsPerByte {
		t.Fatalf("threads: %d before, %d after asking for %d more locked ones", before, after, postureThreadsPerByte)
	}
	t.Run("after more threads", func(t *testing.T) { checkPosture(t, a, view, postureThreadsPerByte) })

	for _, task := range []*idleTask{a, b} {
		task.finish(t)
	}
}

// TestSandboxDropsSupervisorGroups runs TestSandboxPosture again in a copy of this test
// binary whose supervisor holds supplementary groups (0 and 4: root and adm, as a daemon
// started with SupplementaryGroups= or from a login shell might). The task must still hold
// no group but its own mapped gid ("Groups:" empty): a supplementary group would follow the
// task to the host's permission checks on every file it can reach (--dir preopens).
func TestSandboxDropsSupervisorGroups(t *testing.T) {
	privtest.RequireRoot(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestSandboxPosture$", "-test.count=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 0, Gid: 0, Groups: []uint32{0, 4}}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		var groups []string
		for _, line := range strings.Split(string(out), "\n") {
			if strings.Contains(line, "Groups") {
				groups = append(groups, strings.TrimSpace(line))
			}
		}
		t.Fatalf("with supplementary groups 0 and 4 on the supervisor, TestSandboxPosture fails (%v); %d lines about Groups, first: %q\n%s",
			err, len(groups), strings.Join(groups[:min(len(groups), 1)], ""), lastLines(string(out), 15))
	}
}

// lastLines is the end of a long output.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// TestSandboxNotDumpable checks that stage two is not dumpable and cannot become so again.
//
// The honest way to see PR_GET_DUMPABLE is from inside. From the host there is no root-
// visible trace: /proc/<pid> has no dumpable line; task_dump_owner gives /proc files of a
// non-dumpable task to the root of its mm's user namespace, which here is the task's own
// host uid, exactly what a dumpable task shows; and host root's CAP_SYS_PTRACE covers the
// task's namespace either way, while a host process of the task's uid is refused by the
// capability check across user namespaces either way. Under the filter prctl is denied
// except PR_SET_VMA, so the reading is made once without the filter (dumpable is set before
// the filter and independently of it) and once with it (neither reading nor resetting the
// flag is possible).
func TestSandboxNotDumpable(t *testing.T) {
	privtest.RequireRoot(t)
	sb := newPostureSandbox(t)
	tests := []struct {
		name   string
		unsafe testhook.Unsafe
		want   string
	}{
		{"without the filter: flag is 0", testhook.Unsafe{NoSeccomp: true}, "get=0 set=ok\n"},
		{"under the filter: prctl denied both ways", testhook.Unsafe{}, "get=EPERM set=EPERM\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := withHooks(t, context.Background(), testhook.Hooks{Payload: "dumpable", Unsafe: tt.unsafe})
			res, err := sb.Run(ctx, sandbox.Spec{})
			if err != nil || res.Outcome != outcome.OK {
				t.Fatalf("run: %v, %s %q, stderr %q", err, res.Outcome, res.Message, res.Stderr)
			}
			if string(res.Stdout) != tt.want {
				t.Fatalf("payload says %q, want %q", res.Stdout, tt.want)
			}
		})
	}
}

// postureLimits are distinctive values, so each one can be found where the kernel keeps it.
var postureLimits = sandbox.Limits{
	MemoryBytes:   96 << 20,
	CPUs:          0.5,
	Pids:          40,
	Timeout:       2 * time.Minute,
	CPUTime:       90 * time.Second,
	FileSizeBytes: 3 << 20,
}

func newPostureSandbox(t *testing.T) *sandbox.Sandbox {
	t.Helper()
	return newSandboxWith(t, sandbox.Config{})
}

// idleTask is a running "idle" payload: its host pid, the writer of its stdin, its stdout.
type idleTask struct {
	pid    int
	uid    int // host uid root maps to, from uid_map
	limits sandbox.Limits
	stdin  *io.PipeWriter
	out    *watchWriter
	done   chan sandbox.Result
}

// startIdle starts an "idle" task and returns once the kernel shows it in stage two and the
// payload has said it runs.
func startIdle(t *testing.T, sb *sandbox.Sandbox, l sandbox.Limits) *idleTask {
	t.Helper()
	pr, pw := io.Pipe()
	task := &idleTask{limits: l, stdin: pw, out: &watchWriter{}, done: make(chan sandbox.Result, 1)}
	pids := make(chan int, 1)
	spec := sandbox.Spec{Stdin: pr, Stdout: task.out, Limits: l}
	hooks := testhook.Hooks{Payload: "idle", OnStart: func(pid int) { pids <- pid }}
	go func() {
		res, err := sb.Run(withHooks(t, context.Background(), hooks), spec)
		if err != nil {
			res = sandbox.Result{Outcome: outcome.SandboxError, Message: err.Error()}
		}
		task.done <- res
	}()
	t.Cleanup(func() { pw.Close() })
	select {
	case task.pid = <-pids:
	case res := <-task.done:
		t.Fatalf("task ended before it started: %s %q", res.Outcome, res.Message)
	}
	waitStageTwo(t, task.pid, privtest.Hot(t))
	task.out.waitForOrEnd(t, postureReady, task.done)
	task.uid = mappedID(t, task.pid, "uid_map")
	return task
}

// finish closes the task's stdin (the payload returns 0 at EOF) and checks it ended ok.
// The task's own 2-minute timeout bounds the wait.
func (it *idleTask) finish(t *testing.T) {
	t.Helper()
	it.stdin.Close()
	if res := <-it.done; res.Outcome != outcome.OK {
		t.Errorf("task %d ended %s %q; stderr %q", it.pid, res.Outcome, res.Message, res.Stderr)
	}
}

// waitStageTwo polls until the kernel shows the child past setup: its argv names stage two
// ("agentbox-sandbox __agentbox_init__ 2", set by the execveat that ends stage one) and its
// status says Seccomp 2 (filter mode), which the last setup step installs. A hot child's
// argv names stage "hot" from before its task came: it is past setup for the task once
// the exec seal is stacked on its filter (Seccomp_filters 2), right before the guest.
// hot says which kind of child it is (stageTwoState).
func waitStageTwo(t *testing.T, pid int, hot bool) {
	t.Helper()
	if state := stageTwoState(pid, hot); state != "" {
		t.Fatalf("pid %d not in stage two: %s", pid, state)
	}
}

// stageTwoState polls for stage two as waitStageTwo does: "" once there, else what it saw
// when pid was gone or stateDeadline passed. hot: the suite runs in hot children
// (privtest.Hot), and only a hot child's stage two counts, so that a task the suite meant
// for one cannot pass in another kind.
func stageTwoState(pid int, hot bool) string {
	deadline := time.Now().Add(stateDeadline)
	for {
		cmdline, errCmd := os.ReadFile(procPath(pid, "cmdline"))
		status, errStatus := os.ReadFile(procPath(pid, "status"))
		seccomp, filters := "", ""
		for _, line := range strings.Split(string(status), "\n") {
			if v, ok := strings.CutPrefix(line, "Seccomp:"); ok {
				seccomp = strings.TrimSpace(v)
			}
			if v, ok := strings.CutPrefix(line, "Seccomp_filters:"); ok {
				filters = strings.TrimSpace(v)
			}
		}
		switch {
		case !hot && string(cmdline) == "agentbox-sandbox\x00__agentbox_init__\x002\x00" && seccomp == "2":
			return ""
		case hot && string(cmdline) == "agentbox-sandbox\x00__agentbox_init__\x00hot\x00" && seccomp == "2" && filters == "2":
			return ""
		case errCmd != nil || errStatus != nil || strings.Contains(string(status), "\nState:\tZ"):
			return fmt.Sprintf("gone (%v)", errors.Join(errCmd, errStatus))
		case time.Now().After(deadline):
			return fmt.Sprintf("still cmdline %q, Seccomp %q after %s", cmdline, seccomp, stateDeadline)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// checkDistinct: two concurrent tasks get different host uids and different namespaces.
func checkDistinct(t *testing.T, a, b *idleTask) {
	if a.uid == b.uid {
		t.Errorf("tasks %d and %d share host uid %d", a.pid, b.pid, a.uid)
	}
	for _, ns := range namespaces {
		la, lb := readlink(t, procPath(a.pid, "ns", ns)), readlink(t, procPath(b.pid, "ns", ns))
		if la == lb {
			t.Errorf("tasks %d and %d share %s namespace %s", a.pid, b.pid, ns, la)
		}
	}
}

// checkPosture runs every host-side check on the task; extraThreads is how many threads the
// payload has started on purpose.
func checkPosture(t *testing.T, it *idleTask, view cgroupView, extraThreads int) {
	checks := []struct {
		name string
		fn   func(*testing.T, *idleTask)
	}{
		{"id maps", checkIDMaps},
		{"threads", func(t *testing.T, it *idleTask) { checkThreads(t, it, extraThreads) }},
		{"namespaces", checkNamespaces},
		{"root and cwd", checkRoot},
		{"mounts", checkMounts},
		{"descriptors", checkFDs},
		{"rlimits", checkRlimits},
		{"process", checkProcess},
		{"executable", checkExe},
		{"environment", checkEnviron},
		{"cgroup", func(t *testing.T, it *idleTask) { checkCgroup(t, it, view) }},
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) { c.fn(t, it) })
	}
}

// checkIDMaps: root in the namespace is one host id of the configured range (1e9 + slot),
// the same for uid and gid.
func checkIDMaps(t *testing.T, it *idleTask) {
	if it.uid < 1_000_000_000 || it.uid >= 1_000_000_000+4096 {
		t.Errorf("uid_map maps root to host uid %d, outside [1e9, 1e9+4096)", it.uid)
	}
	if gid := mappedID(t, it.pid, "gid_map"); gid != it.uid {
		t.Errorf("gid_map maps root to %d, uid_map to %d", gid, it.uid)
	}
	// "allow": the child's clone drops the supervisor's supplementary groups with
	// setgroups(0) inside the namespace. Harmless afterwards: only the task's own gid is
	// mapped, stage two has no CAP_SETGID, and the filter denies setgroups.
	if s := strings.TrimSpace(readFile(t, procPath(it.pid, "setgroups"))); s != "allow" {
		t.Errorf("setgroups = %q, want allow (see sysProcAttr)", s)
	}
}

// mappedID reads a one-line id map "0 <host> 1" and returns the host id.
func mappedID(t *testing.T, pid int, file string) int {
	t.Helper()
	raw := readFile(t, procPath(pid, file))
	f := strings.Fields(raw)
	if len(f) != 3 || f[0] != "0" || f[2] != "1" {
		t.Fatalf("%s of %d = %q, want exactly \"0 <host id> 1\"", file, pid, raw)
	}
	id, err := strconv.Atoi(f[1])
	if err != nil {
		t.Fatalf("%s of %d: host id %q: %v", file, pid, f[1], err)
	}
	return id
}

// checkThreads checks credentials, capabilities, no_new_privs, seccomp and namespaces on
// the process and on every one of its threads, and that each thread is in the task's group.
func checkThreads(t *testing.T, it *idleTask, extra int) {
	tids := threadIDs(t, it.pid)
	if len(tids) < 1+extra || int64(len(tids)) > it.limits.Pids {
		t.Errorf("%d threads, want at least %d and at most pids.max %d", len(tids), 1+extra, it.limits.Pids)
	}
	id := strconv.Itoa(it.uid)
	want := map[string]string{
		"Uid": strings.Repeat(id+"\t", 3) + id, "Gid": strings.Repeat(id+"\t", 3) + id,
		"Groups": "", "NStgid": strconv.Itoa(it.pid) + "\t1", // pid 1 of its own pid namespace
		"CapInh": zeroCaps, "CapPrm": zeroCaps, "CapEff": zeroCaps, "CapBnd": zeroCaps, "CapAmb": zeroCaps,
		"NoNewPrivs": "1", "Seccomp": "2", "Seccomp_filters": "2", // the allowlist, and NoNewExec on it
	}
	maps.Copy(want, speculationReference(t))
	procNS := nsLinks(t, procPath(it.pid))
	for _, tid := range append([]int{it.pid}, tids...) {
		dir := procPath(it.pid, "task", strconv.Itoa(tid))
		if tid == it.pid {
			dir = procPath(it.pid) // the process's own status, then each thread's
		}
		status := readStatus(t, filepath.Join(dir, "status"))
		if f := strings.Fields(status["NSpid"]); len(f) != 2 || f[0] != strconv.Itoa(tid) {
			t.Errorf("%s: NSpid = %q, want %d and its id inside a pid namespace of its own", dir, status["NSpid"], tid)
		}
		for k, v := range want {
			if status[k] != v {
				t.Errorf("%s: %s = %q, want %q", dir, k, status[k], v)
			}
		}
		if got := nsLinks(t, dir); !equalMaps(got, procNS) {
			t.Errorf("%s: namespaces %v differ from the process's %v", dir, got, procNS)
		}
	}
}

// zeroCaps is an empty capability set as /proc/<pid>/status prints it.
const zeroCaps = "0000000000000000"

// namespaces are the ones the child must not share with the host: "time" too where the
// kernel has time namespaces (the sandbox then always makes one).
var namespaces = withTimeNamespace([]string{"user", "pid", "mnt", "net", "ipc", "uts", "cgroup"})

// checkNamespaces: each namespace of the child differs from ours (the host's).
func checkNamespaces(t *testing.T, it *idleTask) {
	own, child := nsLinks(t, "/proc/self"), nsLinks(t, procPath(it.pid))
	for _, ns := range namespaces {
		if own[ns] == child[ns] {
			t.Errorf("%s namespace is the host's: %s", ns, child[ns])
		}
	}
}

// checkRoot: the root is the child's own "/" (a tmpfs no host path reaches) and is empty,
// and the working directory is "/".
func checkRoot(t *testing.T, it *idleTask) {
	if got := readlink(t, procPath(it.pid, "root")); got != "/" {
		t.Errorf("root -> %q, want /", got)
	}
	if got := readlink(t, procPath(it.pid, "cwd")); got != "/" {
		t.Errorf("cwd -> %q, want /", got)
	}
	entries, err := os.ReadDir(procPath(it.pid, "root") + "/")
	if err != nil {
		t.Fatalf("list root: %v", err)
	}
	if len(entries) != 0 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("root holds %v, want nothing", names)
	}
	var st unix.Stat_t
	if err := unix.Stat(procPath(it.pid, "root"), &st); err != nil {
		t.Fatalf("stat root: %v", err)
	}
	var own unix.Stat_t
	unix.Stat("/", &own)
	if st.Dev == own.Dev && st.Ino == own.Ino {
		t.Errorf("child root is the host root (dev %d ino %d)", st.Dev, st.Ino)
	}
}

// checkMounts: the child's mount namespace holds exactly one mount, the tmpfs "agentbox" at
// "/", read-only, nosuid, nodev, noexec, and sized 64k / 128 inodes (no preopens, no cache).
func checkMounts(t *testing.T, it *idleTask) {
	raw := strings.TrimSpace(readFile(t, procPath(it.pid, "mountinfo")))
	lines := strings.Split(raw, "\n")
	if len(lines) != 1 {
		t.Fatalf("mountinfo has %d mounts, want exactly the root:\n%s", len(lines), raw)
	}
	before, after, _ := strings.Cut(lines[0], " - ")
	pre, post := strings.Fields(before), strings.Fields(after)
	if len(pre) < 6 || len(post) < 3 {
		t.Fatalf("malformed mountinfo line %q", lines[0])
	}
	if pre[3] != "/" || pre[4] != "/" || post[0] != "tmpfs" || post[1] != "agentbox" {
		t.Errorf("root mount: root %q at %q, %s %s; want / at /, tmpfs agentbox", pre[3], pre[4], post[0], post[1])
	}
	opts := strings.Split(pre[5], ",")
	for _, o := range []string{"ro", "nosuid", "nodev", "noexec"} {
		if !slices.Contains(opts, o) {
			t.Errorf("root mount options %q lack %s", pre[5], o)
		}
	}
	super := strings.Split(post[2], ",")
	for _, o := range []string{"ro", "size=64k", "nr_inodes=128"} {
		if !slices.Contains(super, o) {
			t.Errorf("root superblock options %q lack %s", post[2], o)
		}
	}
}

// The child's descriptors, exactly. 0, 1, 2 and 4 are the contract's pipes (stdin read end;
// stdout, stderr and the result write ends). 3 and 5 are the Go runtime's netpoller, opened
// in stage two by startNetpoller, before the filter: epoll_create1 and eventfd2 take
// the lowest free numbers once the spec (3), module (5) and binary (6) descriptors have been
// closed. Nothing else: no fd of the supervisor, no memfd, no directory.
var wantFDs = map[int]fdWant{
	0: {"pipe:", unix.O_RDONLY},
	1: {"pipe:", unix.O_WRONLY},
	2: {"pipe:", unix.O_WRONLY},
	3: {"anon_inode:[eventpoll]", unix.O_RDWR},
	4: {"pipe:", unix.O_WRONLY},
	5: {"anon_inode:[eventfd]", unix.O_RDWR},
}

// fdWant is an fd's kind (prefix of its /proc link) and access mode (fdinfo flags).
type fdWant struct {
	kind   string
	access int
}

func checkFDs(t *testing.T, it *idleTask) {
	dir := procPath(it.pid, "fd")
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("list fds: %v", err)
	}
	got := map[int]fdWant{}
	for _, e := range entries {
		n, _ := strconv.Atoi(e.Name())
		got[n] = fdWant{readlink(t, filepath.Join(dir, e.Name())), fdAccess(t, it.pid, e.Name())}
	}
	for n, w := range wantFDs {
		g, ok := got[n]
		if !ok || !strings.HasPrefix(g.kind, w.kind) || g.access != w.access {
			t.Errorf("fd %d = %q access %d, want %s* access %d", n, g.kind, g.access, w.kind, w.access)
		}
	}
	for n, g := range got {
		if _, ok := wantFDs[n]; !ok {
			t.Errorf("unexpected fd %d -> %q (access %d)", n, g.kind, g.access)
		}
	}
}

// fdAccess is the O_ACCMODE part of an fd's flags, from /proc/<pid>/fdinfo (octal).
func fdAccess(t *testing.T, pid int, fd string) int {
	t.Helper()
	for _, line := range strings.Split(readFile(t, procPath(pid, "fdinfo", fd)), "\n") {
		if v, ok := strings.CutPrefix(line, "flags:"); ok {
			flags, err := strconv.ParseInt(strings.TrimSpace(v), 8, 64)
			if err != nil {
				t.Fatalf("fdinfo %s flags %q: %v", fd, v, err)
			}
			return int(flags) & unix.O_ACCMODE
		}
	}
	t.Fatalf("fdinfo %s has no flags line", fd)
	return -1
}

// checkRlimits: the limits stage one sets, soft and hard, as /proc/<pid>/limits prints them.
func checkRlimits(t *testing.T, it *idleTask) {
	cpu := int64(math.Ceil(it.limits.CPUTime.Seconds()))
	want := map[string][2]string{
		"Max open files":     {"256", "256"},
		"Max core file size": {"0", "0"},
		"Max file size":      {fmt.Sprint(it.limits.FileSizeBytes), fmt.Sprint(it.limits.FileSizeBytes)},
		"Max locked memory":  {"0", "0"},
		"Max msgqueue size":  {"0", "0"},
	}
	got := map[string][2]string{}
	const cpuName = "Max cpu time"
	for _, line := range strings.Split(readFile(t, procPath(it.pid, "limits")), "\n") {
		for _, name := range append(slices.Collect(maps.Keys(want)), cpuName) {
			if rest, ok := strings.CutPrefix(line, name+"  "); ok {
				if f := strings.Fields(rest); len(f) >= 2 {
					got[name] = [2]string{f[0], f[1]}
				}
			}
		}
	}
	for name, w := range want {
		if got[name] != w {
			t.Errorf("%s = %v, want soft %s hard %s", name, got[name], w[0], w[1])
		}
	}
	// RLIMIT_CPU also counts what the process used before its task (stage one, and a
	// pooled or hot child's wait and load), rounded up with the task's limit: a second or
	// two more than the limit alone, never less. SIGXCPU at the soft limit, SIGKILL a
	// second later.
	soft, errS := strconv.ParseInt(got[cpuName][0], 10, 64)
	hard, errH := strconv.ParseInt(got[cpuName][1], 10, 64)
	if errS != nil || errH != nil || soft < cpu || soft > cpu+2 || hard != soft+1 {
		t.Errorf("%s = %v, want soft in [%d, %d] (the task's limit and what the child used before it) and hard a second more",
			cpuName, got[cpuName], cpu, cpu+2)
	}
}

// checkProcess: the child is a session and group leader with no controlling terminal, its
// parent is the supervisor (us), and the OOM killer prefers it (oom_score_adj 1000).
func checkProcess(t *testing.T, it *idleTask) {
	stat := readFile(t, procPath(it.pid, "stat"))
	f := strings.Fields(stat[strings.LastIndexByte(stat, ')')+2:])
	ppid, pgrp, sid, tty := f[1], f[2], f[3], f[4]
	self := strconv.Itoa(it.pid)
	if ppid != strconv.Itoa(os.Getpid()) || pgrp != self || sid != self || tty != "0" {
		t.Errorf("stat: ppid %s pgrp %s sid %s tty_nr %s; want ppid %d, pgrp = sid = %d, tty_nr 0", ppid, pgrp, sid, tty, os.Getpid(), it.pid)
	}
	if adj := strings.TrimSpace(readFile(t, procPath(it.pid, "oom_score_adj"))); adj != "1000" {
		t.Errorf("oom_score_adj = %s, want 1000", adj)
	}
}

// checkExe: the child runs from the sealed memfd copy of the binary, never from a path on
// disk (runc CVE-2019-5736), and that memfd is sealed against writes, growth and shrinking.
func checkExe(t *testing.T, it *idleTask) {
	if got := readlink(t, procPath(it.pid, "exe")); got != "/memfd:agentbox-exe (deleted)" {
		t.Errorf("exe -> %q, want /memfd:agentbox-exe (deleted)", got)
	}
	f, err := os.Open(procPath(it.pid, "exe"))
	if err != nil {
		t.Fatalf("open exe: %v", err)
	}
	defer f.Close()
	seals, err := unix.FcntlInt(f.Fd(), unix.F_GET_SEALS, 0)
	if err != nil {
		t.Fatalf("F_GET_SEALS on the child's exe: %v", err)
	}
	const want = unix.F_SEAL_SEAL | unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE
	if seals&want != want {
		t.Errorf("exe seals %#x, want at least %#x", seals, want)
	}
	if _, err := os.OpenFile(procPath(it.pid, "exe"), os.O_WRONLY, 0); err == nil {
		t.Errorf("host root could open the child's exe for writing")
	}
}

// checkEnviron: the environment is exactly what the sandbox sets; nothing of the host's.
func checkEnviron(t *testing.T, it *idleTask) {
	got := strings.Split(strings.TrimSuffix(readFile(t, procPath(it.pid, "environ")), "\x00"), "\x00")
	want := []string{
		"GOMAXPROCS=" + strconv.Itoa(int(math.Ceil(it.limits.CPUs))),
		"GOMEMLIMIT=" + strconv.FormatUint(it.limits.MemoryBytes/10*9, 10),
	}
	if !slices.Equal(got, want) {
		t.Errorf("environ = %q, want %q", got, want)
	}
}

// checkCgroup: in every hierarchy the child is in "<our own cgroup>/agentbox/<our pid>-task-N"
// (one N for all), alone there, with every one of its threads, and that group has the limits.
func checkCgroup(t *testing.T, it *idleTask, view cgroupView) {
	paths, err := cgroupPaths(procPath(it.pid, "cgroup"), view.unified)
	if err != nil {
		t.Fatal(err)
	}
	prefix := fmt.Sprintf("%d-task-", os.Getpid())
	var group string
	for k, parent := range view.parentPaths() {
		p := paths[k]
		name := filepath.Base(p)
		if filepath.Dir(p) != parent || !strings.HasPrefix(name, prefix) || (group != "" && name != group) {
			t.Errorf("controller %q: child in %q, want %s/%s* (same group everywhere)", k, p, parent, prefix)
		}
		group = name
		dir := view.mounts[k].dirFor(p)
		if procs, err := readProcsFile(filepath.Join(dir, "cgroup.procs")); err != nil || !slices.Equal(procs, []int{it.pid}) {
			t.Errorf("%s/cgroup.procs = %v (%v), want [%d]", dir, procs, err, it.pid)
		}
		threads, err := readProcsFile(filepath.Join(dir, threadsFile(view.unified)))
		if want := threadIDs(t, it.pid); err != nil || !slices.Equal(threads, want) {
			t.Errorf("%s/%s = %v (%v), want every thread %v", dir, threadsFile(view.unified), threads, err, want)
		}
	}
	for _, lf := range expectedLimitFiles(view.unified, it.limits.MemoryBytes, it.limits.CPUs, it.limits.Pids) {
		file := filepath.Join(view.mounts[lf.key].dirFor(paths[lf.key]), lf.file)
		b, err := os.ReadFile(file)
		if err != nil && lf.optional && errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if got := strings.TrimSpace(string(b)); err != nil || got != lf.want {
			t.Errorf("%s = %q (%v), want %q", file, got, err, lf.want)
		}
	}
}

// procPath is /proc/<pid>/<parts...>.
func procPath(pid int, parts ...string) string {
	return filepath.Join(append([]string{"/proc", strconv.Itoa(pid)}, parts...)...)
}

// threadIDs lists /proc/<pid>/task, sorted.
func threadIDs(t *testing.T, pid int) []int {
	t.Helper()
	entries, err := os.ReadDir(procPath(pid, "task"))
	if err != nil {
		t.Fatalf("list threads of %d: %v", pid, err)
	}
	var tids []int
	for _, e := range entries {
		tid, _ := strconv.Atoi(e.Name())
		tids = append(tids, tid)
	}
	slices.Sort(tids)
	return tids
}

// readStatus parses a status file into key → value (tabs inside values kept).
func readStatus(t *testing.T, path string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, line := range strings.Split(readFile(t, path), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok {
			out[k] = strings.TrimSpace(v)
		}
	}
	return out
}

// nsLinks reads dir/ns/<name> for the namespaces the sandbox makes.
func nsLinks(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, ns := range namespaces {
		out[ns] = readlink(t, filepath.Join(dir, "ns", ns))
	}
	return out
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return string(b)
}

func readlink(t *testing.T, path string) string {
	t.Helper()
	s, err := os.Readlink(path)
	if err != nil {
		t.Fatalf("readlink %s: %v", path, err)
	}
	return s
}

// watchWriter collects a task's stdout so a test can wait for a line.
type watchWriter struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (w *watchWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

// waitFor waits for s to appear in the output, up to stateDeadline.
func (w *watchWriter) waitFor(t *testing.T, s string) { w.waitForOrEnd(t, s, nil) }

// waitForOrEnd is waitFor that fails at once, with the verdict, if the task ends first.
func (w *watchWriter) waitForOrEnd(t *testing.T, s string, done <-chan sandbox.Result) {
	t.Helper()
	deadline := time.Now().Add(stateDeadline)
	for {
		select {
		case res := <-done:
			t.Fatalf("the task ended before it wrote %q: %s %q, stdout %q, stderr %q", s, res.Outcome, res.Message, res.Stdout, res.Stderr)
		default:
		}
		w.mu.Lock()
		out := w.buf.String()
		w.mu.Unlock()
		if strings.Contains(out, s) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q on the task's stdout after %s; it wrote %q", s, stateDeadline, out)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
