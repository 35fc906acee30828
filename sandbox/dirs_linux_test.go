package sandbox

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/agentbox/agentbox/internal/privtest"
	"github.com/agentbox/agentbox/outcome"
)

// TestDirOutputBelongsToItsOwner: a read-write --dir owned by an ordinary user (mode 0755,
// not 0777). The guest writes a file there; the file is that user's, who reads and deletes
// it without root; a second run writes it again over the first run's file.
func TestDirOutputBelongsToItsOwner(t *testing.T) {
	privtest.RequireRoot(t)
	const user = 4321
	dir := t.TempDir()
	os.Chmod(filepath.Dir(dir), 0o755) // let the user reach its directory
	must(t, os.WriteFile(filepath.Join(dir, "in.txt"), []byte("input\n"), 0o644))
	for _, p := range []string{dir, filepath.Join(dir, "in.txt")} {
		must(t, os.Chown(p, user, user))
	}
	must(t, os.Chmod(dir, 0o755))
	sb := newTestSandbox(t, "")
	module := readModule(t, "../testdata/modules/fs.wasm") // reads in.txt, writes out.txt
	out := filepath.Join(dir, "out.txt")
	if err := idmapSupported(dir); err != nil {
		// tmpfs before Linux 6.3 (the cgroup-v2 VM's /tmp) cannot idmap: the task still
		// runs, with a warning naming the directory, as the guest's own unprivileged uid,
		// which may not write a 0755 directory of another user (fs.wasm exits 11).
		t.Logf("%s cannot be idmapped (%v): checking the fallback instead", dir, err)
		res, err := sb.Run(context.Background(), Spec{Module: module, Dirs: []Dir{{HostPath: dir, GuestPath: "/data"}}})
		if err != nil || res.Outcome != outcome.Exit || res.ExitCode != 11 || len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], dir) {
			t.Fatalf("fallback: %s %q (exit %d) %v, warnings %q; want exit 11 and one warning naming %s", res.Outcome, res.Message, res.ExitCode, err, res.Warnings, dir)
		}
		return
	}
	asUser := func(script string) error {
		cmd := exec.Command("/bin/sh", "-c", script, "sh", out)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: user, Gid: user, Groups: []uint32{}}}
		b, err := cmd.CombinedOutput()
		if err != nil {
			t.Logf("as uid %d: %s: %s", user, script, b)
		}
		return err
	}
	for run := range 3 {
		res, err := sb.Run(context.Background(), Spec{Module: module, Dirs: []Dir{{HostPath: dir, GuestPath: "/data"}}})
		if err != nil || res.Outcome != outcome.OK || len(res.Warnings) > 0 {
			t.Fatalf("run %d: %s %q %v, warnings %q", run, res.Outcome, res.Message, err, res.Warnings)
		}
		var st syscall.Stat_t
		must(t, syscall.Stat(out, &st))
		if st.Uid != user || st.Gid != user {
			t.Fatalf("run %d: out.txt owned by %d:%d, want the directory's owner %d:%d", run, st.Uid, st.Gid, user, user)
		}
		if run == 0 {
			if err := asUser(`grep -q "written by wasm" "$1" && rm "$1"`); err != nil {
				t.Fatalf("the owner cannot read and delete the guest's file: %v", err)
			}
		}
	}
}

// TestReadOnlyDirIsNotIdmapped: a read-only --dir keeps the task's own unprivileged uid, so
// a file only its owner may read stays unreadable to the guest (fs.wasm exits 13).
func TestReadOnlyDirIsNotIdmapped(t *testing.T) {
	privtest.RequireRoot(t)
	dir := t.TempDir()
	must(t, os.WriteFile(filepath.Join(dir, "in.txt"), []byte("secret\n"), 0o600))
	must(t, os.Chmod(dir, 0o755))
	sb := newTestSandbox(t, "")
	res, err := sb.Run(context.Background(), Spec{Module: readModule(t, "../testdata/modules/fs.wasm"),
		Dirs: []Dir{{HostPath: dir, GuestPath: "/data", ReadOnly: true}}})
	if err != nil || res.Outcome != outcome.Exit || res.ExitCode != 13 {
		t.Fatalf("read-only dir: %s %q (exit %d) %v; want exit 13 (in.txt unreadable)", res.Outcome, res.Message, res.ExitCode, err)
	}
}

// idmapSupported tries an idmapped detached mount of dir, as the sandbox would.
func idmapSupported(dir string) error {
	f, err := detachedTree(dir, false)
	if err != nil {
		return err
	}
	defer f.Close()
	return idmapTree(int(f.Fd()), dir, 1_000_000_000)
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
