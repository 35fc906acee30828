//go:build linux && cgo

// Command gen compiles seccomp.Sandboxed() and seccomp.NoNewExec() with libseccomp and
// writes the BPF programs that the seccomp package embeds (filter_<arch>.bpf and
// noexec_<arch>.bpf). Run through `go generate ./seccomp/` (make generate) whenever a
// policy table changes; `make check` fails when either is stale.
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"

	"github.com/agentbox/agentbox/seccomp"
)

func main() {
	out := flag.String("o", fmt.Sprintf("filter_%s.bpf", runtime.GOARCH), "where to write the Sandboxed program")
	noexec := flag.String("noexec", fmt.Sprintf("noexec_%s.bpf", runtime.GOARCH), "where to write the NoNewExec program")
	flag.Parse()
	for _, p := range []struct {
		path   string
		policy seccomp.Policy
	}{{*out, seccomp.Sandboxed()}, {*noexec, seccomp.NoNewExec()}} {
		if err := write(p.path, p.policy); err != nil {
			fmt.Fprintf(os.Stderr, "gen: %v\n", err)
			os.Exit(1)
		}
	}
}

// write compiles policy into path.
func write(path string, policy seccomp.Policy) error {
	bpf, err := seccomp.Compile(policy)
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, bpf, 0o644); err != nil {
		return err
	}
	fmt.Printf("gen: wrote %s (%d instructions)\n", path, len(bpf)/8)
	return nil
}
