//go:build !amd64

package seccomp

// embeddedFilter and embeddedNoNewExec are empty where no policy table exists yet; the
// sandbox refuses to run.
var embeddedFilter, embeddedNoNewExec []byte
