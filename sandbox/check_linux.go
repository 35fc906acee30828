package sandbox

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/agentbox/agentbox/cgroups"
	"github.com/agentbox/agentbox/seccomp"
)

// CheckItem is one thing the host offers or lacks.
type CheckItem struct {
	Name     string `json:"name"`
	OK       bool   `json:"ok"`
	Required bool   `json:"required"` // the sandbox cannot run without it
	Detail   string `json:"detail"`
	Fix      string `json:"fix,omitempty"` // what to do when it is missing
}

// Report is what `agentbox check` prints.
type Report struct {
	Ready bool        `json:"ready"`
	Items []CheckItem `json:"items"`
}

// Check probes this host for everything the sandbox needs, by trying it where a file
// cannot tell (a user namespace, a cgroup with limits), never by guessing.
func Check() Report {
	probes := []func() CheckItem{checkKernel, checkRoot, checkBinary, checkUserNS, checkSeccomp, checkCgroups, checkLandlock}
	r := Report{Ready: true}
	for _, p := range probes {
		it := p()
		r.Items = append(r.Items, it)
		if it.Required && !it.OK {
			r.Ready = false
		}
	}
	return r
}

func checkKernel() CheckItem {
	var u unix.Utsname
	unix.Uname(&u)
	rel := unix.ByteSliceToString(u.Release[:])
	var major, minor int
	fmt.Sscanf(rel, "%d.%d", &major, &minor)
	ok := major > 5 || (major == 5 && minor >= 10)
	return CheckItem{Name: "kernel", OK: ok, Required: true, Detail: "Linux " + rel,
		Fix: "use Linux 5.10 or newer (close_range, CLONE_INTO_CGROUP, cgroup v2 memory.events)"}
}

func checkRoot() CheckItem {
	return CheckItem{Name: "root", OK: os.Geteuid() == 0, Required: true, Detail: fmt.Sprintf("euid %d", os.Geteuid()),
		Fix: "run agentbox as root (it maps each task to its own unprivileged host uid)"}
}

func checkBinary() CheckItem {
	err := checkStatic()
	it := CheckItem{Name: "static binary", OK: err == nil, Required: true, Detail: "statically linked",
		Fix: "build with CGO_ENABLED=0 (make build)"}
	if err != nil {
		it.Detail = err.Error()
	}
	return it
}

// checkUserNS starts this binary in the same namespaces a task gets, as a no-op.
func checkUserNS() CheckItem {
	it := CheckItem{Name: "namespaces", Required: true, Detail: "user, pid, mount, net, ipc, uts, cgroup namespaces work",
		Fix: "enable user namespaces: sysctl user.max_user_namespaces=15000 (and on Ubuntu kernel.apparmor_restrict_unprivileged_userns=0 for non-root)"}
	cmd := exec.Command("/proc/self/exe", initArg, "probe")
	cmd.SysProcAttr = sysProcAttr(uint32(1_000_000_000), Unsafe{})
	cmd.Env = []string{}
	if err := cmd.Run(); err != nil {
		it.Detail = fmt.Sprintf("could not start a child in new namespaces: %v", err)
		return it
	}
	it.OK = true
	return it
}

func checkSeccomp() CheckItem {
	it := CheckItem{Name: "seccomp", Required: true, Fix: "use a kernel with CONFIG_SECCOMP_FILTER"}
	status, _ := os.ReadFile("/proc/self/status")
	if !strings.Contains(string(status), "Seccomp:") {
		it.Detail = "the kernel reports no seccomp support"
		return it
	}
	if err := seccomp.Validate(seccomp.Filter()); err != nil {
		it.Detail = fmt.Sprintf("built-in filter unusable: %v", err)
		return it
	}
	it.OK, it.Detail = true, fmt.Sprintf("filter mode available; policy of %d instructions", len(seccomp.Filter())/8)
	return it
}

// checkCgroups creates and removes a real task group with every limit set.
func checkCgroups() CheckItem {
	it := CheckItem{Name: "cgroups", Required: true,
		Fix: "mount cgroup v2 (or v1 memory, cpu, cpuacct, pids controllers); under systemd run agentbox in a unit with Delegate=yes"}
	m, err := cgroups.NewManager()
	if err != nil {
		it.Detail = err.Error()
		return it
	}
	g, err := m.Create(fmt.Sprintf("check-%d", os.Getpid()), cgroups.Limits{MemoryBytes: 64 << 20, CPUs: 1, Pids: 16})
	if err != nil {
		it.Detail = fmt.Sprintf("cgroup %s: cannot create a limited group: %v", m.Mode(), err)
		return it
	}
	if err := g.Delete(); err != nil {
		it.Detail = fmt.Sprintf("cgroup %s: cannot remove a group: %v", m.Mode(), err)
		return it
	}
	it.OK, it.Detail = true, fmt.Sprintf("cgroup %s: memory, cpu and pids limits work beneath our own group", m.Mode())
	return it
}

// checkLandlock reports the Landlock ABI; agentbox does not depend on it yet.
func checkLandlock() CheckItem {
	const createRulesetVersion = 1
	v, _, errno := syscall.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, 0, 0, createRulesetVersion)
	if errno != 0 {
		return CheckItem{Name: "landlock", Detail: fmt.Sprintf("not available (%v); optional", errno),
			Fix: "optional: boot with lsm=...,landlock for an extra filesystem wall"}
	}
	return CheckItem{Name: "landlock", OK: true, Detail: fmt.Sprintf("ABI version %d; optional, not used yet", v)}
}
