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
