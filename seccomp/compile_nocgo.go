//go:build !linux || !cgo

package seccomp

// Enabled reports whether this build can Compile policies. This build has no
// cgo or is not Linux, so it cannot; Load still works on Linux.
const Enabled = false

// Compile always fails in this build with ErrNotCompiledIn: the sandbox must
// refuse to start without a policy rather than run unfiltered.
func Compile(p Policy) ([]byte, error) {
	return nil, ErrNotCompiledIn
}
