//go:build !amd64

package seccomp

// Default returns an empty policy on architectures without a table yet;
// Compile refuses it with ErrNoPolicyForArch rather than run unfiltered.
//
// TODO(arm64): port the amd64 table (no open/stat/fork/iopl; mmap args match).
func Default() Policy { return Policy{} }

// NoNewExec returns an empty policy where Default has no table either.
func NoNewExec() Policy { return Policy{Otherwise: Allow} }
