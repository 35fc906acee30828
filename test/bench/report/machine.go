package main

import (
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"time"
)

// machine is what the report says of the host it ran on.
type machine struct {
	date, kernel, cpu, memory, cgroups, goVersion, commit, load string
	cores                                                       int
	bwrap, crun                                                 string // versions, "" if absent
}

func probeMachine(out benchOutput) machine {
	m := probeHost(out.cpu)
	if out.started != "" {
		m.date = out.started
	}
	if out.load != "" {
		m.load = out.load
	}
	return m
}

func probeHost(cpu string) machine {
	m := machine{date: time.Now().UTC().Format("2006-01-02 15:04 UTC"), cores: runtime.NumCPU(), cpu: cpu,
		goVersion: runtime.Version(), kernel: firstLine(readFile("/proc/sys/kernel/osrelease"))}
	if m.cpu == "" {
		m.cpu = cpuModel()
	}
	m.memory = memTotal()
	m.load = strings.Join(strings.Fields(readFile("/proc/loadavg"))[:3], " / ")
	m.cgroups = cgroupLayout()
	m.commit = commit()
	m.bwrap = firstLine(command("bwrap", "--version"))
	m.crun = firstLine(command("crun", "--version"))
	return m
}

func readFile(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return line
}

func command(name string, args ...string) string {
	out, err := exec.Command(name, args...).Output()
	if err != nil {
		return ""
	}
	return string(out)
}

func cpuModel() string {
	for _, line := range strings.Split(readFile("/proc/cpuinfo"), "\n") {
		if v, ok := strings.CutPrefix(line, "model name"); ok {
			return strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
		}
	}
	return runtime.GOARCH
}

func memTotal() string {
	for _, line := range strings.Split(readFile("/proc/meminfo"), "\n") {
		if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			var kb float64
			for _, f := range strings.Fields(v)[:1] {
				kb = atof(f)
			}
			return fmtFloat(kb/(1<<20), 1) + " GiB"
		}
	}
	return "?"
}

const cgroup2Magic = 0x63677270

// cgroupLayout names the host's cgroup layout as agentbox sees it.
func cgroupLayout() string {
	var root, unified syscall.Statfs_t
	if syscall.Statfs("/sys/fs/cgroup", &root) == nil && root.Type == cgroup2Magic {
		return "cgroup v2"
	}
	if syscall.Statfs("/sys/fs/cgroup/unified", &unified) == nil && unified.Type == cgroup2Magic {
		return "cgroup v1, hybrid (cgroup2 at /sys/fs/cgroup/unified)"
	}
	return "cgroup v1"
}

// commit is the checkout's commit, marked when the tree has changes.
func commit() string {
	c := strings.TrimSpace(command("git", "rev-parse", "--short=12", "HEAD"))
	if c == "" {
		return "unknown (not a git checkout)"
	}
	if strings.TrimSpace(command("git", "status", "--porcelain", "--untracked-files=no")) != "" {
		c += " (modified)"
	}
	return c
}
