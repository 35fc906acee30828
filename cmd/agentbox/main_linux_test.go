package main

import (
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/agentbox/agentbox/internal/privtest"
	"github.com/agentbox/agentbox/verdict"
)

// withoutSysAdmin, set in the environment, makes the test binary a helper that execs its
// arguments with CAP_SYS_ADMIN dropped from the bounding set: root as in a default container.
const withoutSysAdmin = "AGENTBOX_TEST_EXEC_WITHOUT_SYS_ADMIN"

func init() {
	if os.Getenv(withoutSysAdmin) == "1" {
		execWithoutSysAdmin(os.Args[1:])
	}
}

// execWithoutSysAdmin drops CAP_SYS_ADMIN from this thread's bounding set and execs argv
// from the same thread: root's capabilities after exec are the bounding set.
func execWithoutSysAdmin(argv []string) {
	runtime.LockOSThread()
	if err := unix.Prctl(unix.PR_CAPBSET_DROP, unix.CAP_SYS_ADMIN, 0, 0, 0); err != nil {
		os.Stderr.WriteString("drop CAP_SYS_ADMIN: " + err.Error() + "\n")
		os.Exit(99)
	}
	err := syscall.Exec(argv[0], argv, []string{"PATH=/usr/bin:/bin"})
	os.Stderr.WriteString("exec " + argv[0] + ": " + err.Error() + "\n")
	os.Exit(99)
}

// TestCheckUnprivileged: without root, or as root without CAP_SYS_ADMIN (a default
// container), check says so and skips what depends on it, instead of blaming the host.
func TestCheckUnprivileged(t *testing.T) {
	privtest.RequireRoot(t)
	bin := agentbox(t)
	nobody := func(args ...string) *exec.Cmd {
		c := exec.Command(bin, args...)
		c.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		return c
	}
	noSysAdmin := func(args ...string) *exec.Cmd {
		c := exec.Command(os.Args[0], append([]string{bin}, args...)...)
		c.Env = []string{withoutSysAdmin + "=1"}
		return c
	}
	tests := []struct {
		name    string
		cmd     func(args ...string) *exec.Cmd
		missing string // the item that fails
		says    string
	}{
		{name: "not root", cmd: nobody, missing: "root", says: "not root"},
		{name: "root without CAP_SYS_ADMIN", cmd: noSysAdmin, missing: "CAP_SYS_ADMIN", says: "no CAP_SYS_ADMIN (inside a container?)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := run(t, tt.cmd("check", "--json"))
			var rep checkReport
			oneJSON(t, r.stdout, &rep)
			if r.code != exitCheckFailed || rep.Ready {
				t.Fatalf("exit %d ready %t; want exit 1, not ready\n%s", r.code, rep.Ready, r.stdout)
			}
			if ok, _, detail := rep.item(tt.missing); ok || !strings.Contains(detail, tt.says) {
				t.Errorf("item %s: ok %t detail %q; want not ok saying %q", tt.missing, ok, detail, tt.says)
			}
			for _, it := range rep.Items {
				if (it.Name == "namespaces" || it.Name == "cgroups" || it.Name == "sandboxed run") && (!it.Skipped || it.Fix != "") {
					t.Errorf("item %s: skipped %t fix %q; want skipped, with no fix of its own", it.Name, it.Skipped, it.Fix)
				}
			}
			r = run(t, tt.cmd("run", "--json", mod("hello.wasm")))
			var body verdict.ErrorBody
			oneJSON(t, r.stdout, &body)
			if r.code != exitUsage || body.Error == nil || body.Error.Code != verdict.Unsupported || !strings.Contains(body.Error.Message, tt.says) {
				t.Errorf("run: exit %d error %+v; want exit 2, unsupported, saying %q", r.code, body.Error, tt.says)
			}
		})
	}
}
