//go:build linux

package security

import (
	"fmt"
	"net"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentbox/agentbox/internal/testhook"
	"github.com/agentbox/agentbox/sandbox"
)

// negative is a negative control: the same attack run with every wall up (on) and with
// one wall taken down through Unsafe (off). The off run must show the attack getting past
// that wall and, where another wall stands behind it, being stopped there. A control whose
// two runs agree would mean the wall does nothing for that attack.
type negative struct {
	name    string
	attack  attack // Expect is ignored: wantOn and wantOff replace it
	on, off testhook.Unsafe
	wantOn  string
	wantOff string
	prefix  bool // wantOff is a prefix (a count follows)
}

func TestNegativeControls(t *testing.T) {
	quickPayload := func(name string) attack {
		return attack{Name: name, From: "payload", payload: name, limits: quick}
	}
	inet := quickPayload("inet-connect")
	inet.setup = hostListener
	unixHost := quickPayload("abstract-unix")
	unixHost.setup = hostAbstractListener
	bomb := attack{Name: "thread-bomb", From: "payload", payload: "thread-bomb",
		limits: sandbox.Limits{Pids: 32, Timeout: 30 * time.Second}}
	grow := attack{Name: "growmem", From: "module", module: sharedModule("growmem.wasm"),
		limits: sandbox.Limits{MemoryBytes: 64 << 20}}
	forks := quickPayload("fork-bomb")
	forks.limits.Pids = 32

	symlink := quickPayload("plant-symlink")
	symlink.setup = withWritableDir

	noSeccomp := testhook.Unsafe{NoSeccomp: true}
	controls := []negative{
		{name: "seccomp and Landlock off: the symlink lands in the output dir (nothing else stops it)",
			attack: symlink, off: testhook.Unsafe{NoSeccomp: true, NoLandlock: true}, wantOn: "EPERM", wantOff: "ok"},
		{name: "seccomp and Landlock off: socket opens, the net namespace has no route to the host",
			attack: inet, off: testhook.Unsafe{NoSeccomp: true, NoLandlock: true}, wantOn: "socket EPERM", wantOff: "connect ENETUNREACH"},
		{name: "seccomp, Landlock and net namespace off: connects to the host listener",
			attack: inet, on: testhook.Unsafe{NoSeccomp: true, NoLandlock: true}, off: testhook.Unsafe{NoSeccomp: true, NoNetNamespace: true, NoLandlock: true},
			wantOn: "connect ENETUNREACH", wantOff: "connect ok"},
		{name: "net namespace off: seccomp still refuses the socket",
			attack: inet, off: testhook.Unsafe{NoNetNamespace: true}, wantOn: "socket EPERM", wantOff: "socket EPERM"},
		{name: "seccomp off: abstract socket on the host is out of reach (net namespace)",
			attack: unixHost, off: noSeccomp, wantOn: "socket EPERM", wantOff: "connect ECONNREFUSED"},
		{name: "seccomp, Landlock and net namespace off: abstract socket on the host connects",
			attack: unixHost, on: noSeccomp, off: testhook.Unsafe{NoSeccomp: true, NoNetNamespace: true, NoLandlock: true},
			wantOn: "connect ECONNREFUSED", wantOff: "connect ok"},
		{name: "seccomp off: unshare meets the thread rule and dropped capabilities",
			attack: quickPayload("unshare-probe"), off: noSeccomp,
			wantOn: "user EPERM, net EPERM", wantOff: "user EINVAL, net EPERM"},
		{name: "seccomp off: fork works, pids.max stops the bomb",
			attack: forks, off: noSeccomp, wantOn: "EPERM after 0 forks", wantOff: "EAGAIN after ", prefix: true},
		{name: "seccomp off: kill(-1) finds nobody in the pid namespace",
			attack: quickPayload("kill-all"), off: noSeccomp, wantOn: "EPERM", wantOff: "ESRCH"},
		{name: "seccomp off: mount refused without capabilities",
			attack: quickPayload("mount-tmpfs"), off: noSeccomp, wantOn: "EPERM", wantOff: "EPERM"},
		{name: "seccomp and Landlock off and capabilities kept: mount succeeds",
			attack: quickPayload("mount-tmpfs"), on: noSeccomp, off: testhook.Unsafe{NoSeccomp: true, KeepCapabilities: true, NoLandlock: true},
			wantOn: "EPERM", wantOff: "ok"},
		{name: "seccomp off and capabilities kept: sethostname succeeds",
			attack: quickPayload("sethostname"), on: noSeccomp, off: testhook.Unsafe{NoSeccomp: true, KeepCapabilities: true},
			wantOn: "EPERM", wantOff: "ok"},
		{name: "capabilities kept: seccomp still refuses mount",
			attack: quickPayload("mount-tmpfs"), off: testhook.Unsafe{KeepCapabilities: true}, wantOn: "EPERM", wantOff: "EPERM"},
		{name: "pids limit off: the thread bomb meets the next wall",
			attack: bomb, off: testhook.Unsafe{NoPidsLimit: true},
			wantOn: "outcome pids_limit", wantOff: "outcome memory_limit"},
		{name: "memory limit off: wazero's linear-memory cap still answers",
			attack: grow, off: testhook.Unsafe{NoMemoryLimit: true},
			wantOn: "outcome memory_limit", wantOff: "outcome memory_limit"},
	}
	sb := newSandbox(t)
	for _, c := range controls {
		t.Run(c.name, func(t *testing.T) {
			for _, run := range []struct {
				label  string
				unsafe testhook.Unsafe
				want   string
				prefix bool
			}{{"on", c.on, c.wantOn, false}, {"off", c.off, c.wantOff, c.prefix}} {
				a := c.attack
				a.Name, a.Expect, a.prefix = a.Name+" ("+run.label+")", run.want, run.prefix
				setup, u := a.setup, run.unsafe
				a.setup = func(t *testing.T, sb *sandbox.Sandbox, j *job) {
					j.hooks.Unsafe = u
					if setup != nil {
						setup(t, sb, j)
					}
				}
				runAttack(t, sb, a)
			}
		})
	}
}

var abstractSeq atomic.Int64

// hostAbstractListener binds an abstract unix socket in the host's network namespace and
// passes its name (without the leading NUL) to the attacker.
func hostAbstractListener(t *testing.T, _ *sandbox.Sandbox, j *job) {
	name := fmt.Sprintf("agentbox-host-%d-%d", os.Getpid(), abstractSeq.Add(1))
	ln, err := net.Listen("unix", "@"+name)
	must(t, err)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	t.Cleanup(func() { ln.Close() })
	j.Args = append(j.Args, name)
}
