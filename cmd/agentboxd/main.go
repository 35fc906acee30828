// Command agentboxd is agentbox's host daemon: an HTTP/JSON API (a unix socket by
// default) in front of a durable queue on NATS JetStream (an embedded server by default,
// a cluster with --nats), a fair scheduler with a memory budget, retries keyed on the
// verdict, and Prometheus metrics. Every task runs through the same sandbox as
// `agentbox run`.
package main

import (
	"fmt"
	"os"

	"github.com/agentbox/agentbox/sandbox"
)

func main() {
	// A re-executed sandbox child never returns from Init.
	sandbox.Init()
	cfg, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintf(os.Stderr, "agentboxd: %v\n", err)
		os.Exit(2)
	}
	if cfg == nil { // --help or --version
		return
	}
	if err := run(cfg); err != nil {
		fmt.Fprintf(os.Stderr, "agentboxd: %v\n", err)
		os.Exit(1)
	}
}
