// Package privtest holds the rules the privileged suites follow: skip when not root,
// unless AGENTBOX_REQUIRE_PRIVILEGED=1 (make test, CI), where a skip would hide a suite that
// never ran and so must fail instead; and which sandbox setup they run against.
package privtest

import (
	"os"
	"strconv"
	"testing"
)

// WarmPool is the sandbox.Config.WarmPool the sandbox and security suites run their tasks
// with: AGENTBOX_TEST_WARM_POOL, else 0. make test runs both suites once with each, so
// that every wall is shown for a child started for its task and for a pooled one.
func WarmPool(t testing.TB) int {
	t.Helper()
	v := os.Getenv("AGENTBOX_TEST_WARM_POOL")
	if v == "" {
		return 0
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		t.Fatalf("AGENTBOX_TEST_WARM_POOL=%q: want a pool size, e.g. 2", v)
	}
	return n
}

// Hot reports whether the sandbox and security suites run each task in a hot child made
// for it (testhook.Hooks.Hot): AGENTBOX_TEST_HOT=1. make test runs the security suite once
// so, besides its runs with and without a warm pool.
func Hot(t testing.TB) bool {
	t.Helper()
	switch v := os.Getenv("AGENTBOX_TEST_HOT"); v {
	case "", "0":
		return false
	case "1":
		return true
	default:
		t.Fatalf("AGENTBOX_TEST_HOT=%q: want 1 or nothing", v)
		return false
	}
}

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
