package sandbox

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestMain lets this test binary serve as the sandbox child: a re-executed child never
// returns from Init.
func TestMain(m *testing.M) {
	Init(WithPayloads(testPayloads))
	os.Exit(m.Run())
}

// testPayloads stand in for a guest that escaped wazero, for the tests in this package.
var testPayloads = map[string]Payload{
	// identity prints what the process is inside its namespaces.
	"identity": func(_ []string, _ io.Reader, stdout, _ io.Writer) int {
		var u unix.Utsname
		unix.Uname(&u)
		entries, _ := os.ReadDir("/")
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		fmt.Fprintf(stdout, "uid=%d gid=%d pid=%d host=%s root=[%s]\n", unix.Getuid(), unix.Getgid(), unix.Getpid(),
			unix.ByteSliceToString(u.Nodename[:]), strings.Join(names, ","))
		return 0
	},
	// hold says "ready" and waits for stdin's end.
	"hold": func(_ []string, stdin io.Reader, stdout, _ io.Writer) int {
		fmt.Fprintln(stdout, "ready")
		io.Copy(io.Discard, stdin)
		return 0
	},
	// spin burns CPU until killed.
	"spin": func([]string, io.Reader, io.Writer, io.Writer) int {
		for {
		}
	},
	// flood writes to stdout without end, bypassing any guest-side cap.
	"flood": func(_ []string, _ io.Reader, stdout, _ io.Writer) int {
		buf := bytes.Repeat([]byte("x"), 64<<10)
		for {
			if _, err := stdout.Write(buf); err != nil {
				return 1
			}
		}
	},
}
