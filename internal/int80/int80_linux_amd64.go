package int80

// Syscall issues i386 system call nr with three arguments through int $0x80
// and returns the raw result (a negative errno on failure). The i386 numbers
// differ from x86_64's: getpid is 20.
//
//go:noescape
func Syscall(nr, a1, a2, a3 uintptr) uintptr
