package sandbox

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/agentbox/agentbox/cgroups"
	"github.com/agentbox/agentbox/internal/testhook"
	"github.com/agentbox/agentbox/internal/units"
	"github.com/agentbox/agentbox/outcome"
	"github.com/agentbox/agentbox/seccomp"
)

// Check probes this host with the default Config (see CheckConfig).
func Check() Report { return CheckConfig(Config{CacheDir: DefaultCacheDir}) }

// CheckConfig probes this host for everything a Sandbox made from cfg needs, by trying it
// where a file cannot tell (a user namespace, a cgroup with limits, a real sandboxed run),
// never by guessing. Without root and CAP_SYS_ADMIN nothing else can be tried: those
// checks are marked skipped rather than blamed on a sysctl or a cgroup mount.
func CheckConfig(cfg Config) Report {
	cfg = cfg.withDefaults()
	r := Report{Ready: true}
	add := func(it CheckItem) {
		if it.OK {
			it.Fix = "" // nothing to fix
		}
		r.Items = append(r.Items, it)
		if it.Required && !it.OK {
			r.Ready = false
		}
	}
	for _, p := range []func() CheckItem{checkKernel, checkRoot, checkCapSysAdmin, checkBinary, checkSeccomp} {
		add(p())
	}
	missing := missingPrivilege()
	for _, p := range privilegedProbes {
		if missing != "" {
			add(skipped(CheckItem{Name: p.name, Required: p.required}, missing))
			continue
		}
		it := p.probe(cfg)
		it.Name, it.Required = p.name, p.required
		add(it)
	}
	add(checkLandlock())
	add(checkTimeNamespace())
	add(checkSpeculation(cfg))
	add(checkRun(cfg, r.Ready))
	return r
}

// privilegedProbes need root and CAP_SYS_ADMIN: without them their failure would say
// nothing about the host, so they are skipped instead.
var privilegedProbes = []struct {
	name     string
	required bool
	probe    func(Config) CheckItem
}{
	{"namespaces", true, checkUserNS},
	{"cgroups", true, checkCgroups},
	{"uid locks", true, checkSlotDir},
	// An unusable cache does not stop tasks (they compile privately, with a warning).
	{"compile cache", false, checkCache},
}

// skipped turns it into a skipped item whose Detail says why.
func skipped(it CheckItem, why string) CheckItem {
	return CheckItem{Name: it.Name, Required: it.Required, Skipped: true, Detail: why}
}

// CheckPrivileges returns an error wrapping ErrUnsupported when this process lacks the
// privileges every task needs: root (to map each task to its own host uid and manage
// cgroups) and CAP_SYS_ADMIN (mounts, cgroups). Root in a default container has no
// CAP_SYS_ADMIN; without this check it would fail only at the first spawn.
func CheckPrivileges() error {
	switch missing := missingPrivilege(); {
	case missing == "":
		return nil
	case os.Geteuid() != 0:
		return fmt.Errorf("%w: %s (euid %d): run agentbox as root", ErrUnsupported, missing, os.Geteuid())
	default:
		return fmt.Errorf("%w: %s: run agentbox on the host, or in a container started with --privileged", ErrUnsupported, missing)
	}
}

// missingPrivilege names, in a few words, the privilege this process lacks; "" if none.
func missingPrivilege() string {
	if os.Geteuid() != 0 {
		return "not root"
	}
	has, err := hasCapSysAdmin()
	switch {
	case err != nil:
		return fmt.Sprintf("cannot read this process's capabilities: %v", err)
	case !has:
		return "no CAP_SYS_ADMIN (inside a container?)"
	}
	return ""
}

// hasCapSysAdmin reads the effective capability set from /proc/self/status: euid 0 is not
// enough inside a container, which usually drops CAP_SYS_ADMIN.
func hasCapSysAdmin() (bool, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return false, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		hex, ok := strings.CutPrefix(sc.Text(), "CapEff:")
		if !ok {
			continue
		}
		caps, err := strconv.ParseUint(strings.TrimSpace(hex), 16, 64)
		if err != nil {
			return false, fmt.Errorf("CapEff %q: %w", hex, err)
		}
		return caps&(1<<unix.CAP_SYS_ADMIN) != 0, nil
	}
	return false, fmt.Errorf("/proc/self/status has no CapEff line")
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
	euid := os.Geteuid()
	if euid != 0 {
		return CheckItem{Name: "root", Required: true, Detail: fmt.Sprintf("not root (euid %d)", euid),
			Fix: "run agentbox as root (it maps each task to its own unprivileged host uid)"}
	}
	return CheckItem{Name: "root", OK: true, Required: true, Detail: "euid 0"}
}

func checkCapSysAdmin() CheckItem {
	it := CheckItem{Name: "CAP_SYS_ADMIN", Required: true}
	if os.Geteuid() != 0 {
		return skipped(it, "not root")
	}
	has, err := hasCapSysAdmin()
	switch {
	case err != nil:
		it.Detail = fmt.Sprintf("cannot read capabilities: %v", err)
	case !has:
		it.Detail = "no CAP_SYS_ADMIN (inside a container?)"
		it.Fix = "run agentbox on the host, or in a container started with --privileged"
	default:
		it.OK, it.Detail = true, "in the effective set"
	}
	return it
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
func checkUserNS(cfg Config) CheckItem {
	it := CheckItem{Detail: "user, pid, mount, net, ipc, uts, cgroup namespaces work",
		Fix: "enable user namespaces: sysctl user.max_user_namespaces=15000"}
	// The probe holds a uid slot like a task, so it never shares a uid with a running one.
	cfg = cfg.withDefaults()
	slots, err := newSlots(SlotLockDir, cfg.UIDBase, cfg.UIDCount)
	if err != nil {
		it.Detail = err.Error()
		return it
	}
	sl, err := slots.acquire()
	if err != nil {
		it.Detail = err.Error()
		return it
	}
	defer sl.release()
	cmd := exec.Command("/proc/self/exe", initArg, stageProbe)
	cmd.SysProcAttr = sysProcAttr(sl.uid, testhook.Unsafe{})
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
func checkCgroups(Config) CheckItem {
	it := CheckItem{Fix: "mount cgroup v2 (or v1 memory, cpu, cpuacct, pids controllers); under systemd run agentbox in a unit with Delegate=yes"}
	m, err := cgroups.NewManager()
	if err != nil {
		it.Detail = err.Error()
		return it
	}
	defer m.Close()
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

// checkSlotDir claims and releases one uid slot in SlotLockDir, as every task does.
func checkSlotDir(cfg Config) CheckItem {
	it := CheckItem{Fix: fmt.Sprintf("make %s a writable directory on a local filesystem that supports flock (a tmpfs /run is usual)", SlotLockDir)}
	s, err := newSlots(SlotLockDir, cfg.UIDBase, cfg.UIDCount)
	if err != nil {
		it.Detail = fmt.Sprintf("%s: %v", SlotLockDir, err)
		return it
	}
	sl, err := s.acquire()
	if err != nil {
		it.Detail = fmt.Sprintf("%s: %v", SlotLockDir, err)
		return it
	}
	sl.release()
	it.OK, it.Detail = true, fmt.Sprintf("%s: uid slot locks can be taken", SlotLockDir)
	return it
}

// checkCache opens the compile cache as a Sandbox would.
func checkCache(cfg Config) CheckItem {
	var it CheckItem
	if cfg.CacheDir == "" {
		it.OK, it.Detail = true, "disabled (--cache-dir \"\"): every run compiles its module privately"
		return it
	}
	if _, err := openCache(cfg.CacheDir, cfg.CacheMaxBytes); err != nil {
		it.Detail = fmt.Sprintf("%s unusable, tasks will compile privately: %v", cfg.CacheDir, err)
		it.Fix = fmt.Sprintf("give %s to root with mode 0711 or 0755, or pass --cache-dir", cfg.CacheDir)
		return it
	}
	entries, _ := listEntries(cfg.CacheDir)
	it.OK, it.Detail = true, fmt.Sprintf("%s: usable; %d entries, bounded at %s", cfg.CacheDir, len(entries), units.FormatSize(cfg.CacheMaxBytes))
	return it
}

// checkLandlock reports whether tasks get a Landlock domain (enterLandlock), and which.
// Not required: without it the mount namespace and seccomp still hold the paths.
func checkLandlock() CheckItem {
	detail, ok := landlockReport()
	return CheckItem{Name: "landlock", OK: ok, Detail: detail,
		Fix: "optional: a kernel with CONFIG_SECURITY_LANDLOCK (Linux 5.19+), booted with landlock in lsm=, adds a third wall for paths"}
}

// checkRun runs checkModule for real, through the cache as configured: the one probe
// that proves the pieces above work together. It is skipped when a required item failed.
func checkRun(cfg Config, ready bool) CheckItem {
	it := CheckItem{Name: "sandboxed run", Required: true}
	if !ready {
		return skipped(it, "a required item above is missing")
	}
	sb, err := New(cfg)
	if err != nil {
		it.Detail = fmt.Sprintf("cannot prepare the sandbox: %v", err)
		return it
	}
	defer sb.Close()
	res, err := sb.Run(context.Background(), Spec{Module: checkModule, Args: []string{"check.wasm"}})
	if err != nil {
		it.Detail = fmt.Sprintf("the sandbox refused the check task: %v", err)
		return it
	}
	it.OK = res.Outcome == outcome.OK
	it.Detail = runDetail(res)
	if !it.OK {
		it.Fix = "the message above names what failed; a sandbox_error here is a bug or a host limit agentbox does not detect yet"
	}
	return it
}

// runDetail describes the check run's verdict, how its compiled code was obtained, and any
// warning.
func runDetail(res Result) string {
	d := fmt.Sprintf("verdict %s: %s; ran in %d ms", res.Outcome, res.Message, res.Usage.WallMS)
	if res.Usage.CompileMS > 0 {
		d += fmt.Sprintf(" after a %d ms sandboxed compile", res.Usage.CompileMS)
	} else if res.Outcome == outcome.OK {
		d += " with compiled code from the cache"
	}
	for _, w := range res.Warnings {
		d += "; warning: " + w
	}
	return d
}

// checkModule is the smallest WASI command: one exported _start of type () -> () that
// returns at once. Hand-encoded so that the check needs no file beside the binary.
var checkModule = []byte{
	0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic "\0asm", version 1
	0x01, 0x04, 0x01, 0x60, 0x00, 0x00, // type section: one type, func () -> ()
	0x03, 0x02, 0x01, 0x00, // function section: one function, of type 0
	0x07, 0x0a, 0x01, 0x06, '_', 's', 't', 'a', 'r', 't', 0x00, 0x00, // export "_start" = func 0
	0x0a, 0x04, 0x01, 0x02, 0x00, 0x0b, // code section: one body of 2 bytes: no locals, end
}
