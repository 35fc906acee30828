package load

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// slotLockDir is sandbox.SlotLockDir: one flock per host uid a task holds.
const slotLockDir = "/run/agentbox/uid-locks"

// sample is what the daemon process and the host show of it at one moment.
type sample struct {
	census
	at          time.Time
	fds         int   // entries of /proc/PID/fd
	childFDs    int   // of which its children's (childFDs)
	threads     int   // Threads of /proc/PID/status
	busyThreads int   // of which in a system call that is no idle wait, or running (threadsInWait)
	inWait      int   // of those, blocked in waitid or wait4 (none: the sandbox waits in the poller)
	rssKB       int64 // VmRSS
	hwmKB       int64 // VmHWM: the peak RSS so far
	childTasks  int   // the children's threads, all told (what a pids limit on the daemon's unit counts)
	cgroups     []string
	locks       []string // uid lock files held by the daemon or a descendant
	mounts      int      // lines of the daemon's mountinfo
	ownMounts   []string // mount points under the test's dir
	scratch     []string // compile scratch left in the cache or in the daemon's TMPDIR
	memAvailKB  int64    // host MemAvailable
	stateBytes  int64    // JetStream's file store
}

// census is the daemon's children by stage, with what one scrape of /metrics said just
// before they were counted: a child that got ready meanwhile is seen in its stage before
// the gauge counts it, never the other way round.
type census struct {
	goroutines int // go_goroutines
	poolMetrics
	children []int // every descendant process of the daemon
	waiting  int   // of which sandbox children in stage one: the warm pool's, or a hot child still warming
	guests   int   // of which sandbox children in stage two: running a task in a child started or pooled for it
	hot      int   // of which hot children (stage "hot"): waiting for a task of their module, or running one
}

// poolMetrics is what /metrics says of the sandbox's warm pool and hot children.
type poolMetrics struct {
	poolSize, poolReady int   // agentbox_warm_pool_size, agentbox_warm_pool_ready
	hotSize, hotReady   int   // agentbox_hot_modules, agentbox_hot_children_ready
	hotTasks, hotFailed int64 // agentbox_hot_tasks_total, agentbox_hot_start_failures_total
}

// held is how many children an idle daemon holds: its warm pool's and its hot children
// ready, each with a cgroup and a uid lock of its own.
func (p poolMetrics) held() int { return p.poolReady + p.hotReady }

// takeCensus scrapes /metrics, then counts the daemon's children by stage.
func takeCensus(d *daemon) (census, error) {
	d.t.Helper()
	body := d.metrics()
	c := census{goroutines: int(metricSum(body, "go_goroutines")), poolMetrics: poolMetrics{
		poolSize: int(metricSum(body, "agentbox_warm_pool_size")), poolReady: int(metricSum(body, "agentbox_warm_pool_ready")),
		hotSize: int(metricSum(body, "agentbox_hot_modules")), hotReady: int(metricSum(body, "agentbox_hot_children_ready")),
		hotTasks: int64(metricSum(body, "agentbox_hot_tasks_total")), hotFailed: int64(metricSum(body, "agentbox_hot_start_failures_total")),
	}}
	var err error
	if c.children, err = descendants(d.pid()); err != nil {
		return c, err
	}
	for _, p := range c.children {
		switch sandboxStage(p) {
		case "1":
			c.waiting++
		case "2":
			c.guests++
		case "hot":
			c.hot++
		}
	}
	return c, nil
}

// running counts the children running a task: in stage two, or in a hot child. A hot
// child's argv says "hot" whether it waits for its task or runs it, so those running one
// are told by agentbox_hot_tasks_total: hotBase is its value before the tasks running now
// began, and none of these may have ended since (the holders, until they are cancelled).
// exact is false while a hot child is neither ready nor running a counted task (still
// loading its module, or taken for a task not yet handed to it): count again later.
func (c census) running(hotBase int64) (n int, exact bool) {
	inHot := int(c.hotTasks - hotBase)
	return c.guests + inHot, c.hot == c.hotReady+inHot
}

// probe takes a sample of d.
func probe(d *daemon) sample {
	d.t.Helper()
	pid := d.pid()
	s := sample{at: time.Now()}
	var errs []error
	note := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	var err error
	s.census, err = takeCensus(d)
	note(err)
	s.fds, err = countDir(fmt.Sprintf("/proc/%d/fd", pid))
	note(err)
	// Every child waiting for its task holds its spec socket in the daemon; a running one
	// has had its spec, and the socket is closed (an idle daemon runs none).
	s.childFDs = childFDs(pid, s.children, s.waiting+s.hot)
	st, err := procStatus(pid)
	note(err)
	s.threads, s.rssKB, s.hwmKB = int(st["Threads"]), st["VmRSS"], st["VmHWM"]
	s.inWait, s.busyThreads = threadsInWait(pid)
	s.childTasks = threadsOf(s.children)
	s.cgroups, err = taskCgroups(pid)
	note(err)
	s.locks, err = heldLocks(append([]int{pid}, s.children...))
	note(err)
	s.mounts, s.ownMounts, err = mounts(pid, d.dir)
	note(err)
	s.scratch = scratch(d)
	s.memAvailKB = memAvailable()
	s.stateBytes = dirBytes(filepath.Join(d.dir, "state"))
	if len(errs) > 0 {
		d.t.Fatalf("probe agentboxd (pid %d): %v", pid, errors.Join(errs...))
	}
	return s
}

// ownFDs are the daemon's descriptors but those it holds for its children: what the leak
// checks compare, since an idle daemon holds a few for each of its hot children, and how
// many hot children it keeps changes with the modules run.
func (s sample) ownFDs() int { return s.fds - s.childFDs }

func (s sample) String() string {
	return fmt.Sprintf("goroutines %d, fds %d (%d for its children), threads %d (%d busy), RSS %.1f MiB (peak %.1f MiB), "+
		"children %d (%d threads; %d in stage one, %d in stage two, %d hot), warm pool %d of %d ready, "+
		"hot children %d ready of %d modules (%d tasks ran hot, %d failed to start), "+
		"cgroups %d, held uid locks %d, mounts %d, scratch %d, JetStream store %.1f MiB",
		s.goroutines, s.fds, s.childFDs, s.threads, s.busyThreads, mib(s.rssKB), mib(s.hwmKB),
		len(s.children), s.childTasks, s.waiting, s.guests, s.hot, s.poolReady, s.poolSize,
		s.hotReady, s.hotSize, s.hotTasks, s.hotFailed,
		len(s.cgroups), len(s.locks), s.mounts, len(s.scratch), float64(s.stateBytes)/(1<<20))
}

func mib(kb int64) float64 { return float64(kb) / 1024 }

// threadsInWait counts the threads of pid blocked in waitid or wait4, and those busy: in
// a system call that is not an idle wait (or running), from /proc/PID/task/*/syscall (its
// first field is the number of the call a thread is in, "running" when it is in none).
func threadsInWait(pid int) (inWait, busy int) {
	tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	for _, e := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/syscall", pid, e.Name()))
		if err != nil {
			continue // the thread ended
		}
		f := strings.Fields(string(b))
		if len(f) == 0 {
			continue
		}
		if f[0] == strconv.Itoa(unix.SYS_WAITID) || f[0] == strconv.Itoa(unix.SYS_WAIT4) {
			inWait++
		}
		if !idleSyscalls[f[0]] {
			busy++
		}
	}
	return inWait, busy
}

// leftovers lists what no idle daemon may hold: processes, cgroups, locks, mounts under
// the test dir, scratch. An idle daemon's warm pool is full, and it holds exactly its
// children: the warm pool's, each waiting in stage one, and its hot children ready
// (agentbox_hot_children_ready), each waiting in stage "hot"; every one has a cgroup and a
// uid lock of its own. Right after a task a hot child may still be warming (in stage one,
// or in stage "hot" loading its module, not ready yet): that daemon is not idle yet.
// Empty when clean.
func (s sample) leftovers() []string {
	var out []string
	add := func(what string, n int, detail any) {
		if n > 0 {
			out = append(out, fmt.Sprintf("%d %s: %v", n, what, detail))
		}
	}
	if s.poolReady != s.poolSize {
		out = append(out, fmt.Sprintf("warm pool %d of %d ready", s.poolReady, s.poolSize))
	}
	if s.hotReady > s.hotSize {
		out = append(out, fmt.Sprintf("%d hot children ready, more than the %d modules that may keep one", s.hotReady, s.hotSize))
	}
	if s.waiting != s.poolReady {
		out = append(out, fmt.Sprintf("%d children in stage one, want the warm pool's %d ready (more: a hot child still warming, or a pooled child the pool lost)", s.waiting, s.poolReady))
	}
	if s.hot != s.hotReady {
		out = append(out, fmt.Sprintf("%d hot children, want the %d ready (more: one still loading its module, running a task, or lost by the sandbox)", s.hot, s.hotReady))
	}
	add("guests in stage two", s.guests, "want none")
	if len(s.children) != s.held() {
		out = append(out, fmt.Sprintf("%d child processes, want only the warm pool's %d and the %d hot children ready: %v", len(s.children), s.poolReady, s.hotReady, s.children))
	}
	if g := groupNames(s.cgroups); g != s.held() {
		out = append(out, fmt.Sprintf("%d task cgroups, want one for each of the warm pool's %d children and the %d hot children ready: %v", g, s.poolReady, s.hotReady, s.cgroups))
	}
	if len(s.locks) != s.held() {
		out = append(out, fmt.Sprintf("%d held uid locks, want one for each of the warm pool's %d children and the %d hot children ready: %v", len(s.locks), s.poolReady, s.hotReady, s.locks))
	}
	add("mounts under the test dir", len(s.ownMounts), s.ownMounts)
	add("scratch dirs", len(s.scratch), s.scratch)
	return out
}

// sandboxStage is the stage of a sandbox child ("1", "2", "hot"), from its argv (sandbox's
// childArgs: agentbox-sandbox __agentbox_init__ STAGE); "" for any other process.
func sandboxStage(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return ""
	}
	argv := strings.Split(strings.TrimSuffix(string(b), "\x00"), "\x00")
	if len(argv) != 3 || argv[1] != "__agentbox_init__" {
		return ""
	}
	return argv[2]
}

func countDir(dir string) (int, error) {
	es, err := os.ReadDir(dir)
	return len(es), err
}

// childFDs counts the descriptors of pid that are its children's: its end of each pipe a
// child holds the other end of (the same inode, the other access mode: a descriptor the
// daemon inherited and passed on to stage one is not one), each uid lock file, and the
// spec socket of each of the specs children waiting for a task (sandbox's child.spec, one
// each: a socket's peer is not in /proc).
func childFDs(pid int, children []int, specs int) int {
	ends := map[string]int{} // pipe inode -> the access modes children hold it in, as bits
	for _, c := range children {
		for _, f := range fdsOf(c) {
			if strings.HasPrefix(f.link, "pipe:") {
				ends[f.link] |= 1 << f.mode
			}
		}
	}
	n := specs
	for _, f := range fdsOf(pid) {
		if ends[f.link]&^(1<<f.mode) != 0 || strings.HasPrefix(f.link, slotLockDir+"/") {
			n++
		}
	}
	return n
}

// fd is one descriptor: what it points to ("pipe:[123]", a path) and its access mode
// (O_RDONLY, O_WRONLY or O_RDWR).
type fd struct {
	link string
	mode int
}

// fdsOf lists the descriptors of pid; none for a process gone meanwhile.
func fdsOf(pid int) []fd {
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	es, _ := os.ReadDir(dir)
	var out []fd
	for _, e := range es {
		l, err := os.Readlink(filepath.Join(dir, e.Name()))
		if err != nil {
			continue
		}
		info, err := os.ReadFile(fmt.Sprintf("/proc/%d/fdinfo/%s", pid, e.Name()))
		if err != nil {
			continue
		}
		// "flags:\t0100001": octal, the access mode in the low two bits.
		for _, line := range strings.Split(string(info), "\n") {
			if v, ok := strings.CutPrefix(line, "flags:"); ok {
				flags, _ := strconv.ParseUint(strings.TrimSpace(v), 8, 32)
				out = append(out, fd{link: l, mode: int(flags & unix.O_ACCMODE)})
			}
		}
	}
	return out
}

// procStatus returns the numeric fields of /proc/PID/status (kB for the Vm ones).
func procStatus(pid int) (map[string]int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return nil, err
	}
	m := map[string]int64{}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		if f := strings.Fields(v); len(f) > 0 {
			if n, err := strconv.ParseInt(f[0], 10, 64); err == nil {
				m[k] = n
			}
		}
	}
	return m, nil
}

// threadsOf sums the threads of pids (those gone meanwhile count none).
func threadsOf(pids []int) int {
	n := 0
	for _, p := range pids {
		if st, err := procStatus(p); err == nil {
			n += int(st["Threads"])
		}
	}
	return n
}

// descendants lists every process below pid, from the ppid of each /proc/*/stat.
func descendants(pid int) ([]int, error) {
	parent, err := parents()
	if err != nil {
		return nil, err
	}
	var out []int
	for p := range parent {
		for q := parent[p]; q > 1; q = parent[q] {
			if q == pid {
				out = append(out, p)
				break
			}
		}
	}
	slices.Sort(out)
	return out, nil
}

// parents maps every live pid to its ppid.
func parents() (map[int]int, error) {
	es, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	m := map[int]int{}
	for _, e := range es {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue // gone meanwhile
		}
		// pid (comm) state ppid ...: comm may hold spaces and parentheses.
		if f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:])); len(f) > 1 {
			m[p], _ = strconv.Atoi(f[1])
		}
	}
	return m, nil
}

// taskCgroups lists the groups the daemon made ("<pid>-<name>" beneath "<own>/agentbox",
// cgroups/manager_linux.go) in every hierarchy of the daemon's /proc/PID/cgroup: on a v1
// host one per controller, on v2 the unified one.
func taskCgroups(pid int) ([]string, error) {
	own, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return nil, err
	}
	mnts, err := cgroupMounts()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, line := range strings.Split(strings.TrimSpace(string(own)), "\n") {
		f := strings.SplitN(line, ":", 3)
		if len(f) != 3 {
			continue
		}
		for _, m := range mnts {
			if m.controllers == f[1] {
				out = append(out, groupsIn(filepath.Join(m.point, strings.TrimPrefix(f[2], m.root), "agentbox"), pid)...)
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// groupsIn lists the directories of dir named for pid.
func groupsIn(dir string, pid int) []string {
	es, _ := os.ReadDir(dir)
	var out []string
	for _, e := range es {
		if e.IsDir() && strings.HasPrefix(e.Name(), strconv.Itoa(pid)+"-") {
			out = append(out, filepath.Join(dir, e.Name()))
		}
	}
	return out
}

type cgroupMount struct{ point, root, controllers string }

// cgroupMounts lists the cgroup hierarchies of /proc/self/mountinfo; controllers is as
// /proc/PID/cgroup names the hierarchy ("memory", "name=systemd", "" for cgroup2).
func cgroupMounts() ([]cgroupMount, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []cgroupMount
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		a, b := strings.Fields(pre), strings.Fields(post)
		if !ok || len(a) < 5 || len(b) < 3 {
			continue
		}
		switch b[0] {
		case "cgroup2":
			out = append(out, cgroupMount{point: a[4], root: a[3]})
		case "cgroup":
			out = append(out, cgroupMount{point: a[4], root: a[3], controllers: v1Controllers(b[2])})
		}
	}
	return out, sc.Err()
}

// v1Controllers keeps the controller names of a v1 mount's super options, in the order
// /proc/PID/cgroup writes them.
func v1Controllers(opts string) string {
	var cs []string
	for _, o := range strings.Split(opts, ",") {
		switch {
		case o == "rw" || o == "ro" || strings.HasPrefix(o, "release_agent=") || o == "clone_children" || o == "noprefix" || o == "xattr":
		default:
			cs = append(cs, o)
		}
	}
	return strings.Join(cs, ",")
}

// heldLocks lists the uid lock files whose flock (in /proc/locks) a process of pids holds.
func heldLocks(pids []int) ([]string, error) {
	files, err := lockInodes()
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile("/proc/locks")
	if err != nil {
		return nil, err
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		// "1: FLOCK  ADVISORY  WRITE 1234 00:1a:5678 0 EOF"
		f := strings.Fields(line)
		if len(f) < 6 || f[1] != "FLOCK" {
			continue
		}
		pid, _ := strconv.Atoi(f[4])
		id := f[5]
		if name, ok := files[id[strings.LastIndexByte(id, ':')+1:]]; ok && slices.Contains(pids, pid) {
			out = append(out, fmt.Sprintf("%s (pid %d)", name, pid))
		}
	}
	slices.Sort(out)
	return out, nil
}

// lockInodes maps the inode number of every uid lock file to its name.
func lockInodes() (map[string]string, error) {
	es, err := os.ReadDir(slotLockDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	m := map[string]string{}
	for _, e := range es {
		info, err := e.Info()
		if err != nil {
			continue
		}
		if st, ok := info.Sys().(*syscall.Stat_t); ok {
			m[strconv.FormatUint(uint64(st.Ino), 10)] = e.Name()
		}
	}
	return m, nil
}

// flockFree reports whether the uid lock file name can be taken now (and gives it back at
// once): the kernel's own answer, besides /proc/locks.
func flockFree(name string) (bool, error) {
	f, err := os.Open(filepath.Join(slotLockDir, name))
	if err != nil {
		return false, err
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		return false, nil
	}
	return true, syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
}

// mounts counts the daemon's mount table and lists the mount points under dir.
func mounts(pid int, dir string) (int, []string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/mountinfo", pid))
	if err != nil {
		return 0, nil, err
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	var own []string
	for _, l := range lines {
		if f := strings.Fields(l); len(f) > 4 && strings.HasPrefix(f[4], dir) {
			own = append(own, f[4])
		}
	}
	return len(lines), own, nil
}

// scratch lists compile scratch left behind: entries of <cache>/<engine>/scratch and
// agentbox-compile-* in the daemon's TMPDIR (sandbox/cache_linux.go, sandbox_linux.go).
func scratch(d *daemon) []string {
	found, _ := filepath.Glob(filepath.Join(d.cacheDir(), "*", "scratch", "*"))
	tmp, _ := filepath.Glob(filepath.Join(d.tmp(), "*"))
	return append(found, tmp...)
}

// memAvailable is the host's MemAvailable in kB.
func memAvailable() int64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "MemAvailable:"); ok {
			n, _ := strconv.ParseInt(strings.Fields(v)[0], 10, 64)
			return n
		}
	}
	return 0
}

func dirBytes(dir string) int64 {
	var n int64
	filepath.Walk(dir, func(_ string, info os.FileInfo, err error) error {
		if err == nil && info.Mode().IsRegular() {
			n += info.Size()
		}
		return nil
	})
	return n
}
