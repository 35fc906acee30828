// Command agentbox-init is the sandbox's child and nothing else: agentbox and agentboxd
// re-execute it (sealed in memory) as every task's process when it sits beside them. It
// carries the sandbox, wazero and seccomp, and none of the CLI's or the daemon's
// dependencies (cobra, net/http, nats-server, Prometheus), so each of a task's two execs
// starts a smaller binary with less package init. Run by hand, it only says what it is.
package main

import (
	"fmt"
	"os"

	"github.com/agentbox/agentbox/sandbox"
)

func main() {
	// A re-executed sandbox child never returns from Init.
	sandbox.Init()
	fmt.Fprintln(os.Stderr, "agentbox-init is the sandbox child that agentbox and agentboxd start; run agentbox or agentboxd instead")
	os.Exit(2)
}
