package main

import (
	"fmt"
	"strings"

	"github.com/agentbox/agentbox/outcome"
)

// Exit codes. For ok and exit the guest's own code passes through (255 for a code above
// 255); every other outcome has its own code, beside coreutils timeout(1)'s 124/125. A guest
// may exit with any of these codes itself: the verdict (--json, --verdict-file) tells them
// apart.
const (
	exitOK          = 0
	exitCheckFailed = 1 // agentbox check: the sandbox cannot run here
	// exitUsage: the request was refused before it ran (bad flags or sizes, an unreadable
	// module, a request too large, a host that cannot run the sandbox): retrying the same
	// command cannot help.
	exitUsage         = 2
	exitPidsLimit     = 118
	exitInvalidModule = 119
	exitTrap          = 120
	exitMemoryLimit   = 121
	exitCPULimit      = 122
	exitOutputLimit   = 123
	exitTimeout       = 124
	exitSandboxError  = 125 // our own fault during a run; the only class worth retrying
	exitCancelled     = 130 // 128+SIGINT: the usual code for an interrupted command
)

// verdictExitCodes gives each outcome other than ok and exit its code, in the order
// `agentbox run --help` lists them.
var verdictExitCodes = []struct {
	outcome outcome.Outcome
	code    int
	when    string
}{
	{outcome.PidsLimit, exitPidsLimit, "the task hit --pids (only a guest that escaped wazero can)"},
	{outcome.InvalidModule, exitInvalidModule, "the module does not decode, validate, link, or compile within the compile budget"},
	{outcome.Trap, exitTrap, "a wasm trap: unreachable, out of bounds, stack overflow, ..."},
	{outcome.MemoryLimit, exitMemoryLimit, "--memory reached"},
	{outcome.CPULimit, exitCPULimit, "--cpu-time used up"},
	{outcome.OutputLimit, exitOutputLimit, "stdout or stderr passed --output-limit"},
	{outcome.Timeout, exitTimeout, "--timeout passed"},
	{outcome.SandboxError, exitSandboxError, "our own fault during the run; the only class worth retrying"},
	{outcome.Cancelled, exitCancelled, "SIGINT or SIGTERM"},
}

// exitCodeFor maps a verdict to the process exit code.
func exitCodeFor(o outcome.Outcome, guestCode uint32) int {
	switch o {
	case outcome.OK:
		return exitOK
	case outcome.Exit:
		if guestCode > 255 || guestCode == 0 {
			return 255
		}
		return int(guestCode)
	}
	for _, e := range verdictExitCodes {
		if e.outcome == o {
			return e.code
		}
	}
	return exitSandboxError // an outcome this binary does not know is a fault of ours
}

// exitCodeHelp is the exit-code table of `agentbox run --help`, made from the constants
// above so that it cannot drift from them.
func exitCodeHelp() string {
	var b strings.Builder
	fmt.Fprintf(&b, "  %-4d ok: the guest returned from _start or called proc_exit(0)\n", exitOK)
	fmt.Fprintf(&b, "  %-4s exit: the guest's own proc_exit code n (255 if n > 255)\n", "n")
	fmt.Fprintf(&b, "  %-4d usage or setup error, before anything ran: bad flag or size, unreadable or\n", exitUsage)
	b.WriteString("       oversized module, request too large, not root, no CAP_SYS_ADMIN, unusable dirs\n")
	for _, e := range verdictExitCodes {
		fmt.Fprintf(&b, "  %-4d %s: %s\n", e.code, e.outcome, e.when)
	}
	return b.String()
}
