//go:build linux

// Package probe checks that the machine it runs on is the cgroup-v2 host that
// test/vm/run.sh claims to boot: cgroup2 alone at /sys/fs/cgroup, the test
// process in a delegated non-root cgroup, user namespaces, seccomp and
// CLONE_INTO_CGROUP. Off the VM the cgroup tests skip on cgroup v1 hosts;
// with AGENTBOX_REQUIRE_CGROUP2=1 (set by the VM's init) they fail instead.
package probe

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/agentbox/agentbox/internal/privtest"
)

const (
	cgroupRoot        = "/sys/fs/cgroup"
	cgroup2SuperMagic = 0x63677270 // CGROUP2_SUPER_MAGIC, linux/magic.h
	helperEnv         = "AGENTBOX_PROBE_HELPER"
	requireCgroup2Env = "AGENTBOX_REQUIRE_CGROUP2"
	mappedHostID      = 100000 // host uid/gid that root in the test user namespace maps to
	probeCgroupPrefix = "agentbox-probe-"
	wantedControllers = "cpu memory pids"
)

// TestMain doubles as the helper process that the namespace and cgroup tests
// start by re-executing this test binary.
func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		os.Exit(helper(mode))
	}
	os.Exit(m.Run())
}

func helper(mode string) int {
	switch mode {
	case "whoami":
		uidMap, err := os.ReadFile("/proc/self/uid_map")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fmt.Printf("uid=%d gid=%d uid_map=%s\n", os.Getuid(), os.Getgid(), strings.Join(strings.Fields(string(uidMap)), " "))
		return 0
	case "cgroup":
		b, err := os.ReadFile("/proc/self/cgroup")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		os.Stdout.Write(b)
		return 0
	}
	fmt.Fprintf(os.Stderr, "unknown helper mode %q\n", mode)
	return 2
}

func required(env string) bool { return os.Getenv(env) == "1" }

// requireCgroup2 skips the test unless /sys/fs/cgroup is cgroup2; with
// AGENTBOX_REQUIRE_CGROUP2=1 it fails instead.
func requireCgroup2(t *testing.T) {
	t.Helper()
	var st syscall.Statfs_t
	err := syscall.Statfs(cgroupRoot, &st)
	switch {
	case err != nil:
		notAvailable(t, requireCgroup2Env, "statfs %s: %v", cgroupRoot, err)
	case uint32(st.Type) != cgroup2SuperMagic:
		notAvailable(t, requireCgroup2Env, "%s is not cgroup2 (statfs type %#x, want %#x): a cgroup v1 or hybrid host", cgroupRoot, st.Type, cgroup2SuperMagic)
	}
}

func notAvailable(t *testing.T, env, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if required(env) {
		t.Fatalf("%s (and %s=1)", msg, env)
	}
	t.Skip(msg)
}

// ownCgroup returns this process's cgroup v2 path, e.g. "/system.slice/agentbox.service".
func ownCgroup(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if p, ok := strings.CutPrefix(line, "0::"); ok {
			return p
		}
	}
	t.Fatalf("no 0:: line in /proc/self/cgroup:\n%s", b)
	return ""
}

func readFields(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Fields(string(b))
}

func missing(have []string, want string) []string {
	set := map[string]bool{}
	for _, h := range have {
		set[h] = true
	}
	var out []string
	for _, w := range strings.Fields(want) {
		if !set[w] {
			out = append(out, w)
		}
	}
	return out
}

func TestCgroup2Mounted(t *testing.T) {
	requireCgroup2(t)
	// requireCgroup2 already checked the statfs magic; also check the mount table agrees.
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	found := false
	for sc.Scan() {
		// mountinfo: id parent major:minor root mountpoint opts ... - fstype source superopts
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		pf, qf := strings.Fields(pre), strings.Fields(post)
		if len(pf) >= 5 && len(qf) >= 1 && pf[4] == cgroupRoot {
			if qf[0] != "cgroup2" {
				t.Errorf("%s is mounted as %q, want cgroup2", cgroupRoot, qf[0])
			}
			found = true
			t.Logf("mount: %s", sc.Text())
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if !found {
		t.Errorf("%s is not a mount point in /proc/self/mountinfo", cgroupRoot)
	}
}

func TestNoCgroupV1Hierarchies(t *testing.T) {
	requireCgroup2(t)
	b, err := os.ReadFile("/proc/mounts")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 3 && f[2] == "cgroup" {
			t.Errorf("cgroup v1 hierarchy mounted: %s", line)
		}
	}
	// The kernel must not offer v1 controllers either (cgroup_no_v1=all):
	// /proc/cgroups lists hierarchy 0 for every controller that is not on a v1 hierarchy.
	if b, err := os.ReadFile("/proc/cgroups"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.Fields(line)
			if len(f) >= 4 && !strings.HasPrefix(f[0], "#") && f[1] != "0" {
				t.Errorf("controller %s is bound to v1 hierarchy %s", f[0], f[1])
			}
		}
	}
}

func TestSelfCgroupIsUnified(t *testing.T) {
	requireCgroup2(t)
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 1 || !strings.HasPrefix(lines[0], "0::/") {
		t.Fatalf("/proc/self/cgroup should be a single 0::/... line, got:\n%s", b)
	}
	t.Logf("own cgroup: %s", lines[0])
}

// TestDelegatedLeaf checks the situation a systemd service with Delegate=yes
// is in: its own cgroup is not the root, holds its processes, and has the
// cpu, memory and pids controllers available (enabled in its parent).
func TestDelegatedLeaf(t *testing.T) {
	requireCgroup2(t)
	own := ownCgroup(t)
	if own == "/" {
		if required(requireCgroup2Env) {
			t.Fatalf("test runs in the root cgroup; the VM should put it in a delegated child group")
		}
		t.Skip("running in the root cgroup: no parent to check")
	}
	parent := filepath.Join(cgroupRoot, filepath.Dir(own))
	if m := missing(readFields(t, filepath.Join(parent, "cgroup.controllers")), wantedControllers); len(m) > 0 {
		t.Errorf("parent %s lacks controllers %v", parent, m)
	}
	if m := missing(readFields(t, filepath.Join(parent, "cgroup.subtree_control")), wantedControllers); len(m) > 0 {
		t.Errorf("parent %s does not enable %v for its children", parent, m)
	}
	self := filepath.Join(cgroupRoot, own)
	if m := missing(readFields(t, filepath.Join(self, "cgroup.controllers")), wantedControllers); len(m) > 0 {
		t.Errorf("own group %s lacks controllers %v", self, m)
	}
	procs := readFields(t, filepath.Join(self, "cgroup.procs"))
	if !contains(procs, strconv.Itoa(os.Getpid())) {
		t.Errorf("own pid %d not in %s/cgroup.procs %v", os.Getpid(), self, procs)
	}
	t.Logf("own group %s: procs %v, parent controllers %v", own, procs, readFields(t, filepath.Join(parent, "cgroup.subtree_control")))

	// No internal processes: with processes in it, our group cannot hand
	// domain controllers to children. Whatever manages cgroups must first move
	// itself to a leaf. Prove the VM really presents that situation.
	if os.Geteuid() == 0 && len(readFields(t, filepath.Join(self, "cgroup.subtree_control"))) == 0 {
		err := os.WriteFile(filepath.Join(self, "cgroup.subtree_control"), []byte("+memory"), 0)
		if err == nil {
			_ = os.WriteFile(filepath.Join(self, "cgroup.subtree_control"), []byte("-memory"), 0)
			t.Errorf("enabling +memory in a populated non-root group succeeded; expected EBUSY (no internal processes rule)")
		} else if !errors.Is(err, syscall.EBUSY) {
			t.Errorf("enabling +memory in own group: %v, expected EBUSY", err)
		}
	}
}

func contains(list []string, s string) bool {
	for _, l := range list {
		if l == s {
			return true
		}
	}
	return false
}

func TestUserNamespace(t *testing.T) {
	// /proc/self/exe, not os.Executable(): the child runs as an unprivileged
	// host uid, and `go test` keeps its binary in a 0700 directory that such a
	// uid cannot search; the magic link skips the path walk.
	cmd := exec.Command("/proc/self/exe")
	cmd.Env = append(os.Environ(), helperEnv+"=whoami")
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:                 syscall.CLONE_NEWUSER | syscall.CLONE_NEWPID | syscall.CLONE_NEWNS | syscall.CLONE_NEWNET | syscall.CLONE_NEWIPC | syscall.CLONE_NEWUTS | syscall.CLONE_NEWCGROUP,
		UidMappings:                []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getuid(), Size: 1}},
		GidMappings:                []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getgid(), Size: 1}},
		GidMappingsEnableSetgroups: false,
	}
	if os.Geteuid() == 0 {
		// As root, map to an unprivileged host id, as the sandbox does, and
		// become that id: the map alone leaves the child at host uid 0, which
		// is unmapped (overflow uid) inside the namespace.
		cmd.SysProcAttr.UidMappings[0].HostID = mappedHostID
		cmd.SysProcAttr.GidMappings[0].HostID = mappedHostID
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: 0, Gid: 0, NoSetGroups: true}
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		if os.Geteuid() != 0 && (errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.ENOSPC)) {
			// Unprivileged user namespaces are off here: as root they must work.
			privtest.RequireRoot(t)
		}
		t.Fatalf("child in new namespaces: %v\n%s", err, out)
	}
	got := strings.TrimSpace(string(out))
	want := fmt.Sprintf("uid=0 gid=0 uid_map=0 %d 1", cmd.SysProcAttr.UidMappings[0].HostID)
	if got != want {
		t.Fatalf("child reported %q, want %q", got, want)
	}
	t.Log(got)
}

func TestSeccompAvailable(t *testing.T) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	var seccomp string
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Seccomp:"); ok {
			seccomp = strings.TrimSpace(v)
		}
	}
	if seccomp == "" {
		t.Fatalf("/proc/self/status has no Seccomp: field: kernel without CONFIG_SECCOMP")
	}
	actions, err := os.ReadFile("/proc/sys/kernel/seccomp/actions_avail")
	if err != nil {
		t.Fatalf("no seccomp filter support (CONFIG_SECCOMP_FILTER): %v", err)
	}
	if m := missing(strings.Fields(string(actions)), "kill_process kill_thread trap errno log allow"); len(m) > 0 {
		t.Errorf("seccomp actions missing: %v (have %s)", m, strings.TrimSpace(string(actions)))
	}
	t.Logf("Seccomp: %s; actions: %s", seccomp, strings.TrimSpace(string(actions)))
}

func TestCloneIntoCgroup(t *testing.T) {
	requireCgroup2(t)
	privtest.RequireRoot(t)
	own := ownCgroup(t)
	rel := filepath.Join(own, fmt.Sprintf("%s%d", probeCgroupPrefix, os.Getpid()))
	dir := filepath.Join(cgroupRoot, rel)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatalf("create child cgroup beneath own cgroup: %v", err)
	}
	t.Cleanup(func() {
		if err := os.Remove(dir); err != nil {
			t.Errorf("remove %s: %v", dir, err)
		}
	})
	fd, err := syscall.Open(dir, syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)

	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), helperEnv+"=cgroup")
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: fd}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("clone3 with CLONE_INTO_CGROUP: %v\n%s", err, out)
	}
	got := strings.TrimSpace(string(out))
	if got != "0::"+rel {
		t.Fatalf("child was born in %q, want 0::%s", got, rel)
	}
	t.Logf("child born in %s", got)
}
