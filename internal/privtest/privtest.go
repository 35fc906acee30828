// Package privtest holds the one rule every privileged test follows: skip when not root,
// unless AGENTBOX_REQUIRE_PRIVILEGED=1 (make test, CI), where a skip would hide a suite that
// never ran and so must fail instead.
package privtest

import (
	"os"
	"testing"
)

// RequireRoot skips t when not root, or fails it under AGENTBOX_REQUIRE_PRIVILEGED=1.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("AGENTBOX_REQUIRE_PRIVILEGED") == "1" {
		t.Fatal("needs root, and AGENTBOX_REQUIRE_PRIVILEGED=1 forbids skipping")
	}
	t.Skip("needs root")
}
