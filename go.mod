module github.com/agentbox/agentbox

go 1.26.0

require (
	github.com/containerd/cgroups/v3 v3.1.3
	github.com/seccomp/libseccomp-golang v0.11.1
	github.com/spf13/cobra v1.10.2
	github.com/tetratelabs/wazero v1.12.0
	golang.org/x/sys v0.50.0
)

require (
	github.com/inconshreveable/mousetrap v1.1.0 // indirect
	github.com/moby/sys/userns v0.1.0 // indirect
	github.com/spf13/pflag v1.0.9 // indirect
)
