package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/agentbox/agentbox/sandbox"
	"github.com/agentbox/agentbox/supervisor"
	"github.com/agentbox/agentbox/supervisor/api"
	"github.com/agentbox/agentbox/supervisor/metrics"
	"github.com/agentbox/agentbox/supervisor/natsd"
)

// daemon is everything run starts, in the order it stops them.
type daemonParts struct {
	cfg     *config
	log     *slog.Logger
	sb      *sandbox.Sandbox
	js      *natsd.Server // nil with --nats
	nc      *nats.Conn
	svc     *supervisor.Service
	api     *api.Server
	servers []*http.Server
}

func run(cfg *config) error {
	d := &daemonParts{cfg: cfg, log: newLogger(cfg.logJSON)}
	defer d.close()
	if err := d.start(); err != nil {
		return err
	}
	d.log.Info("agentboxd ready", "socket", cfg.socket, "listen", cfg.listen, "nats", d.natsName(), "slots", cfg.service.Slots)
	daemon.SdNotify(false, daemon.SdNotifyReady)
	stopWatchdog := d.watchdog()
	defer stopWatchdog()
	d.signals()
	return nil
}

func newLogger(asJSON bool) *slog.Logger {
	if asJSON {
		return slog.New(slog.NewJSONHandler(os.Stderr, nil))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, nil))
}

func (d *daemonParts) natsName() string {
	if d.cfg.natsURL != "" {
		return d.cfg.natsURL
	}
	return "embedded"
}

// start brings the parts up: sandbox, JetStream, service, API.
func (d *daemonParts) start() error {
	var err error
	if d.cfg.childWhy != "" {
		// Measured: agentboxd's binary is 3x the CLI's and starts several ms slower, on
		// both execs of every task.
		d.log.Warn("tasks start from agentboxd itself, a larger and slower child", "why", d.cfg.childWhy)
	}
	if d.sb, err = sandbox.New(d.cfg.sandbox); err != nil {
		return fmt.Errorf("sandbox: %w", err)
	}
	if w := d.sb.CacheWarning(); w != "" {
		d.log.Warn(w)
	}
	if err := d.connect(); err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	src := &source{sb: d.sb}
	commit, wazero := buildFacts()
	m := metrics.New(reg, src, metrics.BuildInfo{Version: version, Commit: commit, GoVersion: runtime.Version(), WazeroVersion: wazero, Runtime: true})
	m.LeakedCgroups(d.sb.Swept())
	scfg := d.cfg.service
	scfg.Logger, scfg.Observer = d.log, m
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if d.svc, err = supervisor.New(ctx, d.nc, d.sb, scfg); err != nil {
		return err
	}
	src.svc, src.js = d.svc, d.js
	if err := d.svc.Start(ctx); err != nil {
		return err
	}
	tokens, err := d.loadTokens()
	if err != nil {
		return err
	}
	d.api = api.New(d.svc, api.Options{Tokens: tokens, MaxModuleBytes: int64(d.cfg.sandbox.MaxModuleBytes), Metrics: m.Handler(reg), Logger: d.log})
	return d.serve()
}

func (d *daemonParts) connect() error {
	var err error
	if d.cfg.natsURL != "" {
		d.nc, err = nats.Connect(d.cfg.natsURL, nats.Name("agentboxd"), nats.MaxReconnects(-1))
		if err != nil {
			return fmt.Errorf("--nats %s: %w", d.cfg.natsURL, err)
		}
		return nil
	}
	if d.js, err = natsd.Start(natsd.Options{Dir: d.cfg.stateDir, SyncInterval: d.cfg.syncInterval,
		MaxMemoryBytes: int64(d.cfg.jsMaxMemory), MaxStoreBytes: int64(d.cfg.jsMaxStore), Listen: d.cfg.natsListen}); err != nil {
		return err
	}
	d.nc, err = d.js.Connect()
	return err
}

func (d *daemonParts) loadTokens() (*api.Tokens, error) {
	if d.cfg.tokensFile == "" {
		return nil, nil
	}
	return api.LoadTokens(d.cfg.tokensFile)
}

// serve listens on the socket (and TCP when asked) and serves the API in the background.
func (d *daemonParts) serve() error {
	ln, err := api.ListenUnix(d.cfg.socket, d.cfg.socketMode, d.cfg.socketGID)
	if err != nil {
		return err
	}
	d.goServe(ln)
	if d.cfg.listen == "" {
		return nil
	}
	tln, err := net.Listen("tcp", d.cfg.listen)
	if err != nil {
		return fmt.Errorf("--listen %s: %w", d.cfg.listen, err)
	}
	d.goServe(tln)
	return nil
}

func (d *daemonParts) goServe(ln net.Listener) {
	// IdleTimeout: a kept-alive connection between requests holds an fd and a goroutine;
	// long-polls and event streams are requests in progress, not idle.
	srv := &http.Server{Handler: d.api.Handler(), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	d.servers = append(d.servers, srv)
	tls := d.cfg.tlsCert != "" && ln.Addr().Network() == "tcp"
	go func() {
		var err error
		if tls {
			err = srv.ServeTLS(ln, d.cfg.tlsCert, d.cfg.tlsKey)
		} else {
			err = srv.Serve(ln)
		}
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			d.log.Error("API server stopped", "addr", ln.Addr(), "err", err)
		}
	}()
}

// signals blocks until SIGTERM or SIGINT, reloading on SIGHUP, then drains.
func (d *daemonParts) signals() {
	ch := make(chan os.Signal, 4)
	signal.Notify(ch, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	for sig := range ch {
		if sig == syscall.SIGHUP {
			d.reload()
			continue
		}
		d.log.Info("stopping", "signal", sig.String(), "grace", d.cfg.grace)
		daemon.SdNotify(false, daemon.SdNotifyStopping)
		d.drain()
		return
	}
}

// reload rereads the tokens and --config. A file that fails to load changes nothing.
func (d *daemonParts) reload() {
	daemon.SdNotify(false, daemon.SdNotifyReloading)
	defer daemon.SdNotify(false, daemon.SdNotifyReady)
	if tokens, err := d.loadTokens(); err != nil {
		d.log.Error("reload: tokens not changed", "err", err)
	} else if tokens != nil {
		d.api.SetTokens(tokens)
	}
	if d.cfg.configFile == "" {
		d.log.Info("reloaded")
		return
	}
	l, err := readLive(d.cfg.configFile)
	c := d.cfg.service
	if err == nil {
		err = l.apply(&c)
	}
	if err != nil {
		d.log.Error("reload: limits not changed", "err", err)
		return
	}
	d.cfg.service = c
	d.svc.Resize(c.Slots, c.MemoryBudget, c.MaxQueuedPerTenant, c.MaxQueued)
	d.log.Info("reloaded", "slots", c.Slots, "memory_budget", c.MemoryBudget, "max_queued_per_tenant", c.MaxQueuedPerTenant, "max_queued", c.MaxQueued)
}

// drain stops accepting requests, lets running tasks finish within the grace period, and
// re-queues the rest.
func (d *daemonParts) drain() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, s := range d.servers {
		s.Shutdown(ctx) // long-polls and event streams end with it
	}
	d.svc.Drain(d.cfg.grace)
}

func (d *daemonParts) close() {
	for _, s := range d.servers {
		s.Close()
	}
	if d.nc != nil {
		d.nc.Close() // Drain flushed what mattered; nc.Drain would return before it is done
	}
	if d.js != nil {
		d.js.Shutdown()
	}
	if d.sb != nil {
		d.sb.Close()
	}
	os.Remove(d.cfg.socket)
}

// watchdog pings systemd's watchdog while JetStream answers: a daemon whose store hung
// is restarted.
func (d *daemonParts) watchdog() (stop func()) {
	interval, err := daemon.SdWatchdogEnabled(false)
	if err != nil || interval == 0 {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(interval / 3)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				ctx, cancel := context.WithTimeout(context.Background(), interval/3)
				if d.svc.Ready(ctx) == nil {
					daemon.SdNotify(false, daemon.SdNotifyWatchdog)
				}
				cancel()
			}
		}
	}()
	return func() { close(done) }
}

// source feeds the metrics' gauges at scrape time.
type source struct {
	svc *supervisor.Service
	js  *natsd.Server
	sb  *sandbox.Sandbox
}

func (s *source) QueueDepth() map[string]int {
	if s.svc == nil {
		return map[string]int{}
	}
	return s.svc.QueueDepth()
}

func (s *source) Running() int {
	if s.svc == nil {
		return 0
	}
	return s.svc.Running()
}

func (s *source) Slots() (int, int) {
	if s.svc == nil {
		return 0, 0
	}
	return s.svc.Slots()
}

func (s *source) Memory() (uint64, uint64) {
	if s.svc == nil {
		return 0, 0
	}
	return s.svc.Memory()
}

func (s *source) Pool() metrics.PoolStats {
	if s.sb == nil {
		return metrics.PoolStats{}
	}
	return metrics.PoolStats(s.sb.PoolStats())
}

func (s *source) JetStream() metrics.JetStreamStats {
	if s.js == nil {
		return metrics.JetStreamStats{OK: s.svc != nil && s.svc.Ready(context.Background()) == nil}
	}
	return metrics.JetStreamStats(s.js.Stats())
}
