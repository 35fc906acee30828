// Package natsdtest gives tests and benchmarks a JetStream of their own: an embedded
// nats-server (supervisor/natsd) in a temporary directory, stopped when the test ends.
package natsdtest

import (
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/agentbox/agentbox/supervisor/natsd"
)

// JetStream starts an embedded server with opts (in tb.TempDir() when opts.Dir is empty)
// and returns a JetStream context on an in-process connection to it; both are closed by
// tb's cleanup.
func JetStream(tb testing.TB, opts natsd.Options) jetstream.JetStream {
	tb.Helper()
	if opts.Dir == "" {
		opts.Dir = tb.TempDir()
	}
	srv, err := natsd.Start(opts)
	if err != nil {
		tb.Fatalf("start embedded nats-server: %v", err)
	}
	tb.Cleanup(srv.Shutdown)
	nc, err := srv.Connect()
	if err != nil {
		tb.Fatalf("connect to embedded nats-server: %v", err)
	}
	tb.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		tb.Fatalf("jetstream: %v", err)
	}
	return js
}
