// Package natsd runs the embedded nats-server that a single-host agentboxd uses for its
// queue, task records and module bytes: JetStream with a file store under the daemon's
// state dir, reached through an in-process connection. Many hosts point the same daemon
// at a NATS cluster instead (--nats); nothing else in the daemon knows the difference.
package natsd

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// Options configure the embedded server. Zero fields take the defaults below.
type Options struct {
	// Dir holds JetStream's file store (Dir/jetstream).
	Dir string
	// SyncInterval is how often JetStream fsyncs its files. Zero means on every write
	// ("sync: always"): a message is on disk before it is acknowledged, so an accepted
	// task survives a power cut, not only a crash. JetStream's own default (2 minutes)
	// loses acknowledged writes on power loss.
	SyncInterval time.Duration
	// MaxMemoryBytes and MaxStoreBytes bound JetStream. Its own memory default is 75% of
	// the host's RAM, which a sandbox host needs for tasks.
	MaxMemoryBytes int64
	MaxStoreBytes  int64
	// Listen, when set ("127.0.0.1:4222"), also serves clients on TCP; by default the
	// server listens on no port at all.
	Listen string
	// Name is the server's name (default "agentboxd-" + hostname).
	Name string
}

// Defaults.
const (
	DefaultMaxMemoryBytes = 256 << 20
	DefaultMaxStoreBytes  = 10 << 30
)

// Server is a running embedded nats-server.
type Server struct {
	srv *server.Server
}

// Start starts the server and waits until it takes connections.
func Start(o Options) (*Server, error) {
	opts, err := o.serverOptions()
	if err != nil {
		return nil, err
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded nats-server in %s: %w", o.Dir, err)
	}
	srv.Start()
	if !srv.ReadyForConnections(30 * time.Second) {
		srv.Shutdown()
		return nil, fmt.Errorf("embedded nats-server in %s: not ready after 30s", o.Dir)
	}
	return &Server{srv: srv}, nil
}

func (o Options) serverOptions() (*server.Options, error) {
	if o.Dir == "" {
		return nil, fmt.Errorf("embedded nats-server: no state dir")
	}
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("embedded nats-server state dir: %w", err)
	}
	if o.MaxMemoryBytes == 0 {
		o.MaxMemoryBytes = DefaultMaxMemoryBytes
	}
	if o.MaxStoreBytes == 0 {
		o.MaxStoreBytes = DefaultMaxStoreBytes
	}
	if o.Name == "" {
		h, _ := os.Hostname()
		o.Name = "agentboxd-" + h
	}
	opts := &server.Options{
		ServerName:         o.Name,
		JetStream:          true,
		StoreDir:           filepath.Join(o.Dir, "jetstream"),
		JetStreamMaxMemory: o.MaxMemoryBytes,
		JetStreamMaxStore:  o.MaxStoreBytes,
		SyncInterval:       o.SyncInterval,
		SyncAlways:         o.SyncInterval == 0,
		NoSigs:             true, // the daemon owns the signals
		NoLog:              true,
		DontListen:         o.Listen == "",
		MaxPayload:         8 << 20,
	}
	if o.SyncAlways() {
		opts.SyncInterval = 2 * time.Minute // ignored under SyncAlways, but must be valid
	}
	if o.Listen != "" {
		host, port, err := splitHostPort(o.Listen)
		if err != nil {
			return nil, err
		}
		opts.Host, opts.Port = host, port
	}
	return opts, nil
}

// SyncAlways reports whether every write is fsynced before it is acknowledged.
func (o Options) SyncAlways() bool { return o.SyncInterval == 0 }

// Connect opens an in-process connection: no socket, no port.
func (s *Server) Connect(opts ...nats.Option) (*nats.Conn, error) {
	opts = append([]nats.Option{nats.InProcessServer(s.srv), nats.Name("agentboxd")}, opts...)
	nc, err := nats.Connect("", opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to the embedded nats-server: %w", err)
	}
	return nc, nil
}

// Stats is JetStream's state as its monitor reports it.
type Stats struct {
	OK                        bool
	Streams, Consumers        int
	Messages, Bytes           uint64
	StorageBytes, MemoryBytes uint64
	APIErrors                 uint64
}

// Stats reads JetStream's monitor.
func (s *Server) Stats() Stats {
	js, err := s.srv.Jsz(nil)
	if err != nil || js.Disabled {
		return Stats{}
	}
	return Stats{OK: s.srv.JetStreamEnabled(), Streams: js.Streams, Consumers: js.Consumers, Messages: js.Messages,
		Bytes: js.Bytes, StorageBytes: js.Store, MemoryBytes: js.Memory, APIErrors: js.API.Errors}
}

// Shutdown stops the server and waits for it, so that its files are closed.
func (s *Server) Shutdown() {
	s.srv.Shutdown()
	s.srv.WaitForShutdown()
}
