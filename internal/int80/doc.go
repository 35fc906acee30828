// Package int80 makes a system call through the i386 ABI (int $0x80) from a
// 64-bit process. It exists only so the seccomp and security tests can prove that the
// foreign ABI is killed: Go has no way to issue int $0x80 without assembly.
package int80
