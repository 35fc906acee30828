package natsd

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

func start(t *testing.T, o Options) *Server {
	t.Helper()
	srv, err := Start(o)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(srv.Shutdown)
	return srv
}

func TestOptionsRefused(t *testing.T) {
	tests := []struct {
		name string
		o    Options
		want string
	}{
		{name: "no state dir", o: Options{}, want: "no state dir"},
		{name: "listen without a port", o: Options{Listen: "127.0.0.1"}, want: "--nats-listen"},
		{name: "listen on port 0", o: Options{Listen: "127.0.0.1:0"}, want: "not 1-65535"},
		{name: "listen on a port too big", o: Options{Listen: "127.0.0.1:65536"}, want: "not 1-65535"},
		{name: "listen on a named port", o: Options{Listen: "127.0.0.1:nats"}, want: "not 1-65535"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.o.Dir == "" && tt.name != "no state dir" {
				tt.o.Dir = t.TempDir()
			}
			srv, err := Start(tt.o)
			if err == nil {
				srv.Shutdown()
				t.Fatal("Start accepted the options")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err %q does not say %q", err, tt.want)
			}
		})
	}
}

func TestServerOptions(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name   string
		o      Options
		always bool
		listen bool
	}{
		{name: "defaults: fsync always, no port", o: Options{Dir: dir}, always: true},
		{name: "relaxed fsync", o: Options{Dir: dir, SyncInterval: time.Second}},
		{name: "tcp", o: Options{Dir: dir, Listen: "127.0.0.1:4333"}, always: true, listen: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts, err := tt.o.serverOptions()
			if err != nil {
				t.Fatal(err)
			}
			if opts.SyncAlways != tt.always || tt.o.SyncAlways() != tt.always || opts.SyncInterval <= 0 {
				t.Errorf("sync always %t interval %s, want always %t with a valid interval", opts.SyncAlways, opts.SyncInterval, tt.always)
			}
			if opts.DontListen == tt.listen || (tt.listen && (opts.Host != "127.0.0.1" || opts.Port != 4333)) {
				t.Errorf("dont listen %t host %s port %d", opts.DontListen, opts.Host, opts.Port)
			}
			if opts.JetStreamMaxMemory != DefaultMaxMemoryBytes || opts.JetStreamMaxStore != DefaultMaxStoreBytes || !opts.JetStream || !opts.NoSigs {
				t.Errorf("jetstream limits %d/%d, enabled %t, no sigs %t: want the explicit defaults", opts.JetStreamMaxMemory, opts.JetStreamMaxStore, opts.JetStream, opts.NoSigs)
			}
		})
	}
}

// TestDurableAcrossRestart: what JetStream acknowledged is there after the server stops
// and starts again on the same state dir.
func TestDurableAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	srv, err := Start(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	nc, err := srv.Connect()
	if err != nil {
		t.Fatal(err)
	}
	js, _ := jetstream.New(nc)
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "b", Storage: jetstream.FileStorage})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	if st := srv.Stats(); !st.OK || st.Streams != 1 || st.Messages != 1 {
		t.Errorf("stats %+v: want JetStream up with one stream of one message", st)
	}
	nc.Close()
	srv.Shutdown()

	srv = start(t, Options{Dir: dir})
	nc, err = srv.Connect()
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ = jetstream.New(nc)
	kv, err = js.KeyValue(ctx, "b")
	if err != nil {
		t.Fatalf("bucket after restart: %v", err)
	}
	e, err := kv.Get(ctx, "k")
	if err != nil || string(e.Value()) != "v" {
		t.Fatalf("value after restart: %v %v", e, err)
	}
}

func TestListen(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0") // a free port (port 0 itself is refused)
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	srv := start(t, Options{Dir: t.TempDir(), Listen: addr})
	nc, err := srv.Connect()
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if !nc.IsConnected() {
		t.Fatal("in-process connection not connected")
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("a server told to listen on %s takes no TCP client: %v", addr, err)
	}
	c.Close()
}
