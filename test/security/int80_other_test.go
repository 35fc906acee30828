//go:build linux && !amd64

package security

// int80Getpid: int $0x80 is an x86 instruction; the seccomp table is amd64-only so far.
func int80Getpid([]string) string { return "no int 0x80 on this architecture" }
