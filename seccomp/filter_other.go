//go:build !amd64

package seccomp

// embeddedFilter is empty where no policy table exists yet; the sandbox refuses to run.
var embeddedFilter []byte
