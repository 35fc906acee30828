//go:build linux

// Package security is agentbox's security suite: every invariant of DESIGN.md attacked
// twice, from a malicious wasm module and from a native payload that stands for a guest
// that already escaped wazero, run inside the very same sandbox setup.
package security

import (
	"maps"
	"os"
	"testing"

	"github.com/agentbox/agentbox/sandbox"
)

// TestMain makes this test binary the sandbox child too, with the suite's payloads
// registered (a production binary registers none).
func TestMain(m *testing.M) {
	runSpeculationProbe()
	all := map[string]sandbox.Payload{}
	maps.Copy(all, attackPayloads)
	maps.Copy(all, posturePayloads)
	maps.Copy(all, wallPayloads)
	maps.Copy(all, argPayloads)
	maps.Copy(all, execPayloads)
	maps.Copy(all, landlockPayloads)
	maps.Copy(all, sideChannelPayloads)
	maps.Copy(all, gapPayloads)
	maps.Copy(all, verdictPosturePayloads)
	sandbox.Init(sandbox.WithPayloads(all))
	os.Exit(m.Run())
}
