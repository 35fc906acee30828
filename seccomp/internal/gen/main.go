//go:build linux && cgo

// Command gen compiles seccomp.Sandboxed() with libseccomp and writes the BPF program that
// the seccomp package embeds (filter_<arch>.bpf). Run through `go generate ./seccomp/`
// (make generate) whenever the policy table changes; `make check` fails when it is stale.
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"

	"github.com/agentbox/agentbox/seccomp"
)

func main() {
	out := flag.String("o", fmt.Sprintf("filter_%s.bpf", runtime.GOARCH), "where to write the program")
	flag.Parse()
	bpf, err := seccomp.Compile(seccomp.Sandboxed())
	if err != nil {
		fmt.Fprintf(os.Stderr, "gen: %v\n", err)
		os.Exit(1)
	}
	if err := os.WriteFile(*out, bpf, 0o644); err != nil {
		fmt.Fprintf(os.Stderr, "gen: %v\n", err)
		os.Exit(1)
	}
	fmt.Printf("gen: wrote %s (%d instructions)\n", *out, len(bpf)/8)
}
