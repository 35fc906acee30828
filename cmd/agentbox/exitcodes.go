package main

import "github.com/agentbox/agentbox/outcome"

// Exit codes. For ok and exit the guest's own code passes through (clamped to 1..255 for a
// non-zero code); every other outcome has its own code, chosen to sit beside coreutils
// timeout(1)'s 124/125 conventions. --json is authoritative where a guest's code collides.
const (
	exitOK            = 0
	exitUsage         = 2 // bad flags, unreadable files, bad sizes
	exitInvalidModule = 119
	exitTrap          = 120
	exitMemoryLimit   = 121
	exitCPULimit      = 122
	exitOutputLimit   = 123
	exitTimeout       = 124
	exitSandboxError  = 125
	exitCancelled     = 130 // 128+SIGINT: the usual code for an interrupted command
	exitCheckFailed   = 1   // agentbox check: the sandbox cannot run here
)

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
	case outcome.Trap:
		return exitTrap
	case outcome.MemoryLimit:
		return exitMemoryLimit
	case outcome.Timeout:
		return exitTimeout
	case outcome.CPULimit:
		return exitCPULimit
	case outcome.OutputLimit:
		return exitOutputLimit
	case outcome.InvalidModule:
		return exitInvalidModule
	case outcome.Cancelled:
		return exitCancelled
	}
	return exitSandboxError
}
