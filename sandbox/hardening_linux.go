package sandbox

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Two steps of stage one that close side channels rather than paths: the host's clocks
// and speculative execution. Both act on the one locked thread that then execs stage two.

// timeNamespaceLink exists where the kernel has time namespaces (CONFIG_TIME_NS, 5.6+).
const timeNamespaceLink = "/proc/self/ns/time"

// newTimeNamespace makes the exec into stage two enter a time namespace of its own whose
// monotonic and boot clocks start at one second, so that the guest cannot read how long
// the host has been up (CLOCK_BOOTTIME is the host's uptime: a fingerprint, and a way for
// two tasks to tell they share a host). unshare(CLONE_NEWTIME) leaves this process where it
// is and puts its next execve (Linux 5.11+) in the new namespace; its offsets can be set
// only until a process has entered it, hence here, before the exec. One second, not zero:
// the Go runtime refuses a clock that reads zero at start. A kernel without time
// namespaces keeps the host's clocks; `agentbox check` says so.
func newTimeNamespace() (made bool, err error) {
	if !TimeNamespaces() {
		return false, nil
	}
	if err := unix.Unshare(unix.CLONE_NEWTIME); err != nil {
		return false, fmt.Errorf("unshare time namespace: %w", err)
	}
	var offsets []byte
	for _, c := range []struct {
		name string
		id   int32
	}{{"monotonic", unix.CLOCK_MONOTONIC}, {"boottime", unix.CLOCK_BOOTTIME}} {
		var now unix.Timespec
		if err := unix.ClockGettime(c.id, &now); err != nil {
			return false, fmt.Errorf("read %s clock: %w", c.name, err)
		}
		// offset = 1 s - now, as whole seconds (floored) and nanoseconds in [0, 1e9).
		off := int64(time.Second) - now.Nano()
		sec := off / int64(time.Second)
		if off%int64(time.Second) < 0 {
			sec--
		}
		offsets = fmt.Appendf(offsets, "%s %d %d\n", c.name, sec, off-sec*int64(time.Second))
	}
	if err := os.WriteFile("/proc/self/timens_offsets", offsets, 0); err != nil {
		return false, fmt.Errorf("set time namespace offsets %q: %w", offsets, err)
	}
	return true, nil
}

// TimeNamespaces says whether tasks on this host get a time namespace of their own: the
// kernel has time namespaces and enters one at execve. Older kernels (Debian's 6.1, in the cgroup-v2 VM) leave an exec in the old
// namespace, and then refuse every new thread (clone with CLONE_VM while the process's
// namespace for children differs: EINVAL, "failed to create new OS thread"). The exec
// switch is assumed from 6.6 on (the LTS after it; the kernel offers no way to ask).
func TimeNamespaces() bool {
	if _, err := os.Lstat(timeNamespaceLink); errors.Is(err, fs.ErrNotExist) {
		return false
	}
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return false
	}
	var major, minor int
	fmt.Sscanf(unix.ByteSliceToString(u.Release[:]), "%d.%d", &major, &minor)
	return major > 6 || major == 6 && minor >= 6
}

// speculationControls are the per-task speculation features stage one force-disables.
// L1D flushing (PR_SPEC_L1D_FLUSH) is left out: it costs every context switch, and SMT
// siblings are the host's business.
var speculationControls = []struct {
	which  uintptr
	status string // the line of /proc/<pid>/status that shows it
}{
	{unix.PR_SPEC_STORE_BYPASS, "Speculation_Store_Bypass"},
	{unix.PR_SPEC_INDIRECT_BRANCH, "SpeculationIndirectBranch"},
}

// restrictSpeculation force-disables speculative store bypass (Spectre v4) and indirect
// branch speculation (Spectre v2, user space) for this thread, best effort. FORCE_DISABLE
// survives the execve into stage two (unlike DISABLE_NOEXEC) and cannot be undone, and
// every thread stage two starts inherits it, so the guest runs mitigated from its first
// instruction. A kernel or CPU that offers no per-task control answers ENXIO (nothing to
// control, or not affected) or EPERM (the boot command line forced a policy); the task then
// runs under the kernel's own policy, which `agentbox check` reports. Config.AllowSpeculation
// skips this for CPU-heavy guests on a host that trusts them with it: the cost is the CPU's
// (a few percent for store bypass on most code, more on some).
func restrictSpeculation() {
	for _, c := range speculationControls {
		unix.Prctl(unix.PR_SET_SPECULATION_CTRL, c.which, unix.PR_SPEC_FORCE_DISABLE, 0, 0)
	}
}

// speculationState is the task's state of one control, in Posture's words, as the kernel
// gives it to the task itself (arch/x86/kernel/cpu/bugs.c, ssb_prctl_get, ib_prctl_get).
func speculationState(which uintptr) string {
	v, err := unix.PrctlRetInt(unix.PR_GET_SPECULATION_CTRL, which, 0, 0, 0)
	switch {
	case err != nil:
		return fmt.Sprintf("unknown (%v)", err)
	case v == unix.PR_SPEC_NOT_AFFECTED:
		return SpeculationNotAffected
	case v&(unix.PR_SPEC_DISABLE|unix.PR_SPEC_FORCE_DISABLE|unix.PR_SPEC_DISABLE_NOEXEC) == 0:
		return SpeculationEnabled
	case v&unix.PR_SPEC_PRCTL != 0:
		return SpeculationDisabledForTask
	default:
		return SpeculationDisabledHostWide
	}
}

// speculationAchieved says, in the kernel's words, what restrictSpeculation achieves on
// this host: a child process of this binary (stageSpeculation) asks exactly as stage one
// does and prints its status lines. A process, not a thread of ours: the control cannot be
// undone, and a locked thread discarded afterwards would fire the Pdeathsig of every task
// child the Go runtime happened to fork from it (a task SIGKILLed mid-run: the posture
// test caught that). ok is false when any control stays vulnerable.
func speculationAchieved() (detail string, ok bool) {
	out, err := exec.Command("/proc/self/exe", initArg, stageSpeculation).Output()
	if err != nil {
		return fmt.Sprintf("could not ask the kernel: %v", err), false
	}
	ok = true
	var lines []string
	for _, c := range speculationControls {
		v := statusLine(string(out), c.status)
		lines = append(lines, c.status+": "+v)
		if !speculationMitigated(v) {
			ok = false
		}
	}
	return strings.Join(lines, "; "), ok
}

// speculationProbe is stageSpeculation's whole work, on Init's locked thread: restrict,
// then print this thread's status lines for the controls.
func speculationProbe() int {
	restrictSpeculation()
	status, err := os.ReadFile("/proc/thread-self/status")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	for _, c := range speculationControls {
		fmt.Printf("%s:\t%s\n", c.status, statusLine(string(status), c.status))
	}
	return 0
}

// speculationMitigated says whether a status value leaves the task protected, in the
// words of the kernel's fs/proc/array.c: mitigated by us or host-wide, or not affected.
func speculationMitigated(v string) bool {
	switch v {
	case "thread force mitigated", "thread mitigated", "globally mitigated", "not vulnerable", // store bypass
		"conditional force disabled", "conditional disabled", "always disabled", "not affected": // indirect branch
		return true
	}
	return false
}

// statusLine returns the value of key in a /proc status file, "" if absent.
func statusLine(status, key string) string {
	for _, line := range strings.Split(status, "\n") {
		if v, ok := strings.CutPrefix(line, key+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// checkTimeNamespace reports whether tasks get clocks of their own.
func checkTimeNamespace() CheckItem {
	it := CheckItem{Name: "time namespace", Fix: "use Linux 6.6 or later, built with CONFIG_TIME_NS"}
	if !TimeNamespaces() {
		it.Detail = "no time namespace that execve enters (needs Linux 6.6 or later here): tasks read the host's uptime from CLOCK_BOOTTIME"
		return it
	}
	it.OK, it.Detail = true, "every task's monotonic and boot clocks start at 1 s, not at the host's boot"
	return it
}

// checkSpeculation reports what force-disabling speculation achieves on this host.
func checkSpeculation(cfg Config) CheckItem {
	it := CheckItem{Name: "speculation control",
		Fix: "boot with spec_store_bypass_disable=prctl spectre_v2_user=prctl (or =on), on a CPU and hypervisor that expose SSBD and STIBP/IBPB"}
	if cfg.AllowSpeculation {
		it.OK, it.Detail = true, "left to the kernel's default policy (AllowSpeculation)"
		return it
	}
	detail, ok := speculationAchieved()
	it.OK, it.Detail = ok, "tasks run with "+detail
	return it
}
