//go:build linux && amd64

package int80

import (
	"os"
	"testing"
)

// TestGetpid checks the stub itself, unfiltered: i386 getpid (20) must return
// our pid. A kernel without IA32 emulation kills us with SIGSEGV instead; that
// is reported by the seccomp victim test, which probes first.
func TestGetpid(t *testing.T) {
	if got := Syscall(20, 0, 0, 0); int(got) != os.Getpid() {
		t.Fatalf("int 0x80 getpid = %d, want %d", int(got), os.Getpid())
	}
}
