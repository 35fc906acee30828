package sandbox

import (
	"os"
	"testing"
)

// TestMain lets this test binary serve as the sandbox child: a re-executed child never
// returns from Init.
func TestMain(m *testing.M) {
	Init(WithPayloads(testPayloads))
	os.Exit(m.Run())
}

// requireRoot skips a privileged test when not root, unless AGENTBOX_REQUIRE_PRIVILEGED=1
// (set by the Makefile and CI), where a skip would hide a suite that never ran.
func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("AGENTBOX_REQUIRE_PRIVILEGED") == "1" {
			t.Fatal("needs root, and AGENTBOX_REQUIRE_PRIVILEGED=1 forbids skipping")
		}
		t.Skip("needs root")
	}
}
