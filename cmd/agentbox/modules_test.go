package main

import (
	"strings"
	"testing"

	"github.com/agentbox/agentbox/supervisor/task"
)

func TestModuleCommands(t *testing.T) {
	d := newFakeDaemon()
	host := d.start(t)
	dir := t.TempDir()
	a, b := wasmFile(t, dir, "a.wasm", "\x00asm a"), wasmFile(t, dir, "b.wasm", "\x00asm b")
	da, db := digestOf([]byte("\x00asm a")), digestOf([]byte("\x00asm b"))

	r := abcli("module", "push", "--host", host, a, b)
	if r.code != 0 || !strings.Contains(r.stdout, da) || !strings.Contains(r.stdout, a) || !strings.Contains(r.stdout, db) {
		t.Fatalf("push: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = abcli("module", "push", "--host", host, "-o", "jsonl", a)
	if r.code != 0 || !strings.HasPrefix(r.stdout, `{"digest":"`+da+`"`) {
		t.Errorf("push -o jsonl: %q", r.stdout)
	}
	r = abcli("module", "ls", "--host", host, "--json")
	var l task.ModuleList
	oneJSON(t, r.stdout, &l)
	if len(l.Modules) != 2 {
		t.Errorf("ls: %+v", l)
	}
	r = abcli("module", "rm", "--host", host, "sha256:"+da)
	if r.code != 0 || r.stdout != "removed "+da+"\n" {
		t.Errorf("rm: exit %d, %q %q", r.code, r.stdout, r.stderr)
	}
	r = abcli("module", "ls", "--host", host)
	if strings.Contains(r.stdout, da) || !strings.Contains(r.stdout, db) || !strings.HasPrefix(r.stdout, "DIGEST") {
		t.Errorf("ls after rm:\n%s", r.stdout)
	}
	r = abcli("module", "push", "--host", host, "--json")
	if r.code != exitUsage || !strings.Contains(r.stderr, "missing FILE") {
		t.Errorf("push of nothing: exit %d, %q", r.code, r.stderr)
	}
}
