//go:build linux

package security

import (
	"bufio"
	"fmt"
	"io"
	"runtime"

	"golang.org/x/sys/unix"

	"github.com/agentbox/agentbox/sandbox"
)

// postureReady is the line the "idle" payload prints once it runs (after the full setup),
// so the posture test knows the child is in stage two and waiting.
const postureReady = "posture: ready\n"

// postureThreadsPerByte is how many OS threads "idle" starts for every byte on its stdin.
const postureThreadsPerByte = 8

// posturePayloads: payloads the posture and crash tests inspect from outside.
var posturePayloads = map[string]sandbox.Payload{
	// idle waits on stdin so the test can inspect the process from the host. Every byte it
	// reads starts postureThreadsPerByte goroutines, each locked to its own OS thread and
	// parked for good, so the test can check that threads born after the filter carry it
	// too. It reports each batch on stdout and returns 0 at EOF.
	"idle": func(_ []string, stdin io.Reader, stdout, _ io.Writer) int {
		fmt.Fprint(stdout, postureReady)
		r := bufio.NewReader(stdin)
		for batch := 1; ; batch++ {
			if _, err := r.ReadByte(); err != nil {
				return 0
			}
			startLockedThreads(postureThreadsPerByte)
			fmt.Fprintf(stdout, "posture: threads %d\n", batch*postureThreadsPerByte)
		}
	},
	// dumpable prints what prctl says about the dumpable flag and whether the process may
	// turn it back on: "get=<value or errno> set=<ok or errno>". From the host, root sees no
	// difference (see TestSandboxPosture), so this is asked from inside.
	"dumpable": func(_ []string, _ io.Reader, stdout, _ io.Writer) int {
		get := "?"
		if v, err := unix.PrctlRetInt(unix.PR_GET_DUMPABLE, 0, 0, 0, 0); err != nil {
			get = postureErrno(err)
		} else {
			get = fmt.Sprint(v)
		}
		set := "ok"
		if err := unix.Prctl(unix.PR_SET_DUMPABLE, 1, 0, 0, 0); err != nil {
			set = postureErrno(err)
		}
		fmt.Fprintf(stdout, "get=%s set=%s\n", get, set)
		return 0
	},
}

// startLockedThreads starts n goroutines that each hold an OS thread of their own until the
// process ends, and returns once all of them have it.
func startLockedThreads(n int) {
	locked := make(chan struct{})
	for range n {
		go func() {
			runtime.LockOSThread()
			locked <- struct{}{}
			select {} // parked; the locked thread sleeps in futex and is never reused
		}()
	}
	for range n {
		<-locked
	}
}

// postureErrno is the symbolic name of a syscall error ("EPERM"), or its text.
func postureErrno(err error) string {
	if e, ok := err.(unix.Errno); ok {
		if name := unix.ErrnoName(e); name != "" {
			return name
		}
	}
	return err.Error()
}
