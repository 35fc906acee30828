package bench

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// What the host shows of the daemon's tasks, from /proc and the cgroup filesystems.

// stageTwoArgv is the argv of a sandbox child in stage two (sandbox/contract.go: childArgs
// of stageGuest): its guest is starting or running in wazero, every wall up.
const stageTwoArgv = "agentbox-sandbox\x00__agentbox_init__\x002\x00"

// proc is one process of /proc/PID/stat.
type proc struct {
	pid, ppid int
	ticks     int64 // utime + stime
}

// procs reads every process's stat.
func procs() map[int]proc {
	es, _ := os.ReadDir("/proc")
	out := make(map[int]proc, len(es))
	for _, e := range es {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		raw, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue // gone meanwhile
		}
		// pid (comm) state ppid ... utime stime: comm may hold spaces and parentheses.
		f := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+1:]))
		if len(f) < 13 {
			continue
		}
		p := proc{pid: pid}
		p.ppid, _ = strconv.Atoi(f[1])
		ut, _ := strconv.ParseInt(f[11], 10, 64)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		p.ticks = ut + st
		out[pid] = p
	}
	return out
}

// stageTwo lists the daemon's children in stage two, and their CPU ticks all told.
func stageTwo(daemonPid int) (pids []int, ticks int64) {
	for _, p := range procs() {
		if p.ppid != daemonPid {
			continue
		}
		if argv, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p.pid)); err == nil && string(argv) == stageTwoArgv {
			pids = append(pids, p.pid)
			ticks += p.ticks
		}
	}
	return pids, ticks
}

// pssBytes is a process's proportional set size: its private pages and its share of
// every page it shares (the sealed child binary, libraries' page cache).
func pssBytes(pid int) int64 { return kbField(fmt.Sprintf("/proc/%d/smaps_rollup", pid), "Pss:") }

// memAvailableBytes is the host's MemAvailable.
func memAvailableBytes() int64 { return kbField("/proc/meminfo", "MemAvailable:") }

// kbField reads a "Name: N kB" line of a /proc file, in bytes; 0 if absent.
func kbField(path, name string) int64 {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name); ok {
			if fs := strings.Fields(v); len(fs) > 0 {
				n, _ := strconv.ParseInt(fs[0], 10, 64)
				return n << 10
			}
		}
	}
	return 0
}

// taskMemory sums, over the memory cgroups the daemon made for its tasks ("<pid>-<name>"
// beneath "<its own>/agentbox", cgroups/manager_linux.go), their kernel memory and their
// whole usage (user, kernel and page cache charged to them). On cgroup v1 these are
// memory.kmem.usage_in_bytes and memory.usage_in_bytes; on v2 memory.stat's kernel and
// memory.current.
func taskMemory(daemonPid int) (groups int, kernel, usage int64, err error) {
	dir, v2, err := memoryCgroupDir(daemonPid)
	if err != nil {
		return 0, 0, 0, err
	}
	es, err := os.ReadDir(filepath.Join(dir, "agentbox"))
	if err != nil {
		return 0, 0, 0, err
	}
	for _, e := range es {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), strconv.Itoa(daemonPid)+"-") {
			continue
		}
		g := filepath.Join(dir, "agentbox", e.Name())
		groups++
		if v2 {
			kernel += statField(filepath.Join(g, "memory.stat"), "kernel")
			usage += intFile(filepath.Join(g, "memory.current"))
		} else {
			kernel += intFile(filepath.Join(g, "memory.kmem.usage_in_bytes"))
			usage += intFile(filepath.Join(g, "memory.usage_in_bytes"))
		}
	}
	return groups, kernel, usage, nil
}

// memoryCgroupDir is the daemon's memory cgroup directory: in the v1 memory hierarchy when
// there is one, else in the unified one.
func memoryCgroupDir(pid int) (dir string, v2 bool, err error) {
	own, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return "", false, err
	}
	mounts, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return "", false, err
	}
	var unified string
	for _, line := range strings.Split(strings.TrimSpace(string(own)), "\n") {
		f := strings.SplitN(line, ":", 3)
		if len(f) != 3 {
			continue
		}
		switch {
		case hasController(f[1], "memory"):
			if p := cgroupMount(string(mounts), "cgroup", "memory"); p != "" {
				return filepath.Join(p, f[2]), false, nil
			}
		case f[0] == "0" && f[1] == "":
			unified = f[2]
		}
	}
	if p := cgroupMount(string(mounts), "cgroup2", ""); p != "" && unified != "" {
		return filepath.Join(p, unified), true, nil
	}
	return "", false, fmt.Errorf("no memory cgroup for pid %d", pid)
}

func hasController(list, c string) bool {
	for _, x := range strings.Split(list, ",") {
		if x == c {
			return true
		}
	}
	return false
}

// cgroupMount finds the mount point of a cgroup filesystem (with controller c among its
// options, for v1) whose root is the hierarchy's root.
func cgroupMount(mountinfo, fstype, c string) string {
	for _, line := range strings.Split(mountinfo, "\n") {
		pre, post, ok := strings.Cut(line, " - ")
		a, b := strings.Fields(pre), strings.Fields(post)
		if !ok || len(a) < 5 || len(b) < 3 || b[0] != fstype || a[3] != "/" {
			continue
		}
		if c == "" || hasController(b[2], c) {
			return a[4]
		}
	}
	return ""
}

func intFile(path string) int64 {
	raw, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	n, _ := strconv.ParseInt(strings.TrimSpace(string(raw)), 10, 64)
	return n
}

// statField reads "name N" of a cgroup v2 stat file.
func statField(path, name string) int64 {
	raw, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	return 0
}
