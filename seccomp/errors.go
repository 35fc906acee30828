package seccomp

import "errors"

// Sentinel errors. Callers check them with errors.Is; the messages returned
// wrap them with the offending value.
var (
	// ErrNotCompiledIn is returned by Compile in a build without cgo or
	// libseccomp. The sandbox must refuse to run unfiltered rather than
	// silently skip the policy.
	ErrNotCompiledIn = errors.New("seccomp support not compiled in (build with cgo and libseccomp-dev)")

	// ErrUnsupportedOS is returned by Load where seccomp(2) does not exist.
	ErrUnsupportedOS = errors.New("seccomp is only supported on Linux")

	// ErrNoPolicyForArch is returned by Compile for an empty policy, which is
	// what Default returns on an architecture without a table yet.
	ErrNoPolicyForArch = errors.New("no seccomp allowlist for this architecture")

	// ErrInvalidPolicy is returned by Policy.Check (and so Compile) for a
	// table that is malformed: missing names or reasons, duplicate entries,
	// bad conditions or actions.
	ErrInvalidPolicy = errors.New("invalid seccomp policy")

	// ErrUnknownSyscall is returned by Compile for a name libseccomp cannot
	// resolve on the native architecture: a typo would otherwise leave a
	// hole or a denial silently missing.
	ErrUnknownSyscall = errors.New("unknown syscall name")

	// ErrInvalidBPF is returned by Validate (and so Load) for bytes that
	// cannot be a classic BPF seccomp program.
	ErrInvalidBPF = errors.New("invalid seccomp BPF program")

	// ErrLoad is returned by Load when the kernel refuses the filter.
	ErrLoad = errors.New("installing seccomp filter failed")
)
