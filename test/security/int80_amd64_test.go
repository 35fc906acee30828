//go:build linux

package security

import "github.com/agentbox/agentbox/internal/int80"

// int80Getpid issues i386 getpid (20) through int $0x80, from an assembly stub linked into
// this binary: the no-new-exec filter refuses the RW page flipped to RX that used to carry
// the instruction, and a guest that escaped wazero would find the same refusal.
func int80Getpid([]string) string {
	int80.Syscall(20, 0, 0, 0)
	return "survived int 0x80"
}
