package seccomp

import _ "embed"

//go:embed filter_amd64.bpf
var embeddedFilter []byte

//go:embed noexec_amd64.bpf
var embeddedNoNewExec []byte
