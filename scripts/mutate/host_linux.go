package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/agentbox/agentbox/sandbox"
)

// hostLacks says why this host cannot show a wall that needs feature ("" when it can): a
// mutant of a wall the host does not have would survive for the host's sake, not the
// suite's, so the harness skips it and says so.
func hostLacks(feature string) string {
	unified := exists("/sys/fs/cgroup/cgroup.controllers")
	switch feature {
	case needCgroupV1:
		if unified {
			return "this host runs cgroup v2"
		}
	case needCgroupV2:
		if !unified {
			return "this host runs cgroup v1 (make test-cgroupv2 boots a v2 kernel)"
		}
	case needTimeNS:
		if !sandbox.TimeNamespaces() {
			return "tasks get no time namespace here (none, or Linux older than 6.6)"
		}
	case needLandlock:
		v, _, e := unix.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, 0, 0, unix.LANDLOCK_CREATE_RULESET_VERSION)
		if e != 0 || v < 2 {
			return fmt.Sprintf("landlock_create_ruleset(VERSION): ABI %d (%v)", v, e)
		}
	case needSpeculationCtrl:
		return speculationLack()
	default:
		return "unknown feature " + feature
	}
	return ""
}

// speculationLack: the kernel offers per-task control when its status line for either
// feature starts with "thread" (fs/proc/array.c: PR_SPEC_PRCTL); "vulnerable", "always
// enabled" and the like mean a prctl changes nothing.
func speculationLack() string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return err.Error()
	}
	var seen []string
	for _, line := range strings.Split(string(b), "\n") {
		for _, key := range []string{"Speculation_Store_Bypass:", "SpeculationIndirectBranch:"} {
			if v, ok := strings.CutPrefix(line, key); ok {
				v = strings.TrimSpace(v)
				if strings.HasPrefix(v, "thread") || strings.HasPrefix(v, "conditional") {
					return ""
				}
				seen = append(seen, strings.TrimSuffix(key, ":")+" "+v)
			}
		}
	}
	return "the kernel shows " + strings.Join(seen, ", ")
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return !errors.Is(err, fs.ErrNotExist)
}
