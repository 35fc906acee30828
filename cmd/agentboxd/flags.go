package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/user"
	"runtime"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/spf13/pflag"

	"github.com/agentbox/agentbox/internal/units"
	"github.com/agentbox/agentbox/sandbox"
	"github.com/agentbox/agentbox/supervisor"
	"github.com/agentbox/agentbox/supervisor/natsd"
)

// config is the daemon's configuration from its flags, with what --config may change
// live on SIGHUP.
type config struct {
	stateDir     string
	socket       string
	socketMode   os.FileMode
	socketGID    int
	listen       string
	tlsCert      string
	tlsKey       string
	tokensFile   string
	configFile   string
	natsURL      string
	natsListen   string
	syncInterval time.Duration
	jsMaxMemory  uint64
	jsMaxStore   uint64
	grace        time.Duration
	sandbox      sandbox.Config
	service      supervisor.Config
	logJSON      bool
	childWhy     string // why no agentbox-init was found beside us (logged)
}

// live is what SIGHUP reloads from --config (JSON); absent fields keep the flags' values.
type live struct {
	Slots              int    `json:"slots"`
	MemoryBudget       string `json:"memory_budget"`
	MaxQueuedPerTenant int    `json:"max_queued_per_tenant"`
	MaxQueued          int    `json:"max_queued"`
}

// defaultWarmPool is the daemon's warm pool by default: enough for a burst on a small
// host, at about 1.5 MiB of host memory per waiting child (bench/REPORT.md).
const defaultWarmPool = 4

// defaultHotModules is how many modules keep a hot child by default: the few a host runs
// most, each child holding a uid and a cgroup as a pooled one does, and its module's
// compiled code loaded besides (sandbox.Config.HotModules).
const defaultHotModules = 4

func parseFlags(args []string) (*config, error) {
	fs := pflag.NewFlagSet("agentboxd", pflag.ContinueOnError)
	c := &config{}
	var mode, group, budget, cacheMax, compileMem, maxModule, jsMem, jsStore string
	var showVersion bool
	fs.StringVar(&c.stateDir, "state-dir", "/var/lib/agentbox", "JetStream's file store (embedded server)")
	fs.StringVar(&c.socket, "socket", "/run/agentbox/agentboxd.sock", "unix socket of the API")
	fs.StringVar(&mode, "socket-mode", "0660", "mode of the socket")
	fs.StringVar(&group, "socket-group", "", "group of the socket (name or gid; default root's)")
	fs.StringVar(&c.listen, "listen", "", "also serve the API on TCP at this address (needs --tokens)")
	fs.StringVar(&c.tlsCert, "tls-cert", "", "certificate for --listen (with --tls-key): HTTPS")
	fs.StringVar(&c.tlsKey, "tls-key", "", "private key for --tls-cert")
	fs.StringVar(&c.tokensFile, "tokens", "", "tokens file: lines of '<sha256-hex of token> <tenant>'; reloaded on SIGHUP")
	fs.StringVar(&c.configFile, "config", "", "JSON file of slots, memory_budget, max_queued_per_tenant, max_queued; reloaded on SIGHUP")
	fs.StringVar(&c.natsURL, "nats", "", "use this NATS server or cluster (nats://...) instead of the embedded one")
	fs.StringVar(&c.natsListen, "nats-listen", "", "let the embedded server also listen on TCP (host:port)")
	fs.DurationVar(&c.syncInterval, "sync-interval", 0, "JetStream fsync interval; 0 fsyncs every write before it is acknowledged")
	fs.StringVar(&jsMem, "jetstream-max-memory", units.FormatSize(natsd.DefaultMaxMemoryBytes), "JetStream memory storage bound")
	fs.StringVar(&jsStore, "jetstream-max-store", units.FormatSize(natsd.DefaultMaxStoreBytes), "JetStream file storage bound")
	fs.DurationVar(&c.grace, "grace", 30*time.Second, "on SIGTERM, how long running tasks may finish before they are killed and re-queued")
	fs.StringVar(&c.service.HostID, "host-id", "", "this host's name in leases and attempts (default: hostname)")
	fs.IntVar(&c.service.Slots, "slots", runtime.NumCPU(), "tasks running at once")
	fs.StringVar(&budget, "memory-budget", units.FormatSize(supervisor.DefaultMemoryBudget), "sum of the running tasks' memory limits")
	fs.DurationVar(&c.service.Lease, "lease", supervisor.DefaultLease, "a task whose holder does not renew for this long is taken over")
	fs.IntVar(&c.service.MaxQueuedPerTenant, "max-queued-per-tenant", supervisor.DefaultMaxQueuedPerTenant, "queued tasks per tenant (429 past it)")
	fs.IntVar(&c.service.MaxQueued, "max-queued", supervisor.DefaultMaxQueued, "queued tasks in all (429 past it)")
	fs.DurationVar(&c.service.Retention, "retention", supervisor.DefaultRetention, "final tasks older than this are deleted")
	fs.IntVar(&c.service.MaxRecords, "max-records", supervisor.DefaultMaxRecords, "final tasks kept at most (oldest deleted first)")
	fs.StringVar(&c.sandbox.CacheDir, "cache-dir", sandbox.DefaultCacheDir, "compiled-code cache shared with agentbox run")
	fs.StringVar(&cacheMax, "cache-max-size", units.FormatSize(sandbox.DefaultCacheMaxBytes), "bound of the cache")
	fs.DurationVar(&c.sandbox.Compile.Timeout, "compile-timeout", sandbox.DefaultCompileTimeout, "wall-clock budget of a sandboxed compile")
	fs.StringVar(&compileMem, "compile-memory", units.FormatSize(sandbox.DefaultCompileMemory), "memory budget of a sandboxed compile")
	fs.StringVar(&maxModule, "max-module-size", units.FormatSize(sandbox.DefaultMaxModuleBytes), "largest module accepted")
	fs.BoolVar(&c.sandbox.AllowSpeculation, "allow-speculation", false, "leave speculative store bypass and indirect branch speculation to the kernel's default (tasks force-disable both by default)")
	fs.StringVar(&c.sandbox.ChildBinary, "child-binary", "", "static agentbox-init of the same build to spawn tasks from (default: the one beside agentboxd, else agentboxd itself)")
	fs.IntVar(&c.sandbox.WarmPool, "warm-pool", defaultWarmPool, "sandbox children kept ready for tasks, each in its namespaces and cgroup (0: start each when its task comes)")
	fs.IntVar(&c.sandbox.WarmPoolRefill, "warm-pool-refill", 1, "warm pool children started at once to refill it")
	fs.IntVar(&c.sandbox.HotModules, "hot-modules", defaultHotModules, "modules that keep a hot child ready for their next task: a sandbox child with the module's compiled code loaded, made after its second run (0: none)")
	fs.BoolVar(&c.logJSON, "log-json", false, "log JSON lines instead of text")
	fs.BoolVar(&showVersion, "version", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return nil, nil
		}
		return nil, err
	}
	if showVersion {
		fmt.Print(versionText())
		return nil, nil
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q: agentboxd takes flags only", fs.Arg(0))
	}
	sizes := []struct {
		flag, v string
		dst     *uint64
	}{{"--memory-budget", budget, &c.service.MemoryBudget}, {"--cache-max-size", cacheMax, &c.sandbox.CacheMaxBytes},
		{"--compile-memory", compileMem, &c.sandbox.Compile.MemoryBytes}, {"--max-module-size", maxModule, &c.sandbox.MaxModuleBytes},
		{"--jetstream-max-memory", jsMem, &c.jsMaxMemory}, {"--jetstream-max-store", jsStore, &c.jsMaxStore}}
	for _, s := range sizes {
		n, err := units.ParseSize(s.v)
		if err != nil || n == 0 {
			return nil, fmt.Errorf("%s %q: want a size such as 4Gi", s.flag, s.v)
		}
		*s.dst = n
	}
	c.service.MaxModuleBytes = c.sandbox.MaxModuleBytes
	if !fs.Changed("child-binary") {
		c.sandbox.ChildBinary, c.childWhy = sandbox.LocateChild()
	}
	m, err := strconv.ParseUint(mode, 8, 32)
	if err != nil || m > 0o777 {
		return nil, fmt.Errorf("--socket-mode %q: want an octal mode such as 0660", mode)
	}
	c.socketMode = os.FileMode(m)
	if c.socketGID, err = lookupGroup(group); err != nil {
		return nil, err
	}
	if c.listen != "" && c.tokensFile == "" {
		return nil, fmt.Errorf("--listen %s needs --tokens: a TCP API without tokens would serve anyone who can reach the port", c.listen)
	}
	if (c.tlsCert == "") != (c.tlsKey == "") {
		return nil, fmt.Errorf("--tls-cert and --tls-key go together")
	}
	if c.configFile != "" {
		l, err := readLive(c.configFile)
		if err != nil {
			return nil, err
		}
		if err := l.apply(&c.service); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func lookupGroup(g string) (int, error) {
	if g == "" {
		return -1, nil
	}
	if n, err := strconv.Atoi(g); err == nil {
		return n, nil
	}
	gr, err := user.LookupGroup(g)
	if err != nil {
		return 0, fmt.Errorf("--socket-group %q: %w", g, err)
	}
	n, _ := strconv.Atoi(gr.Gid)
	return n, nil
}

func readLive(path string) (live, error) {
	var l live
	b, err := os.ReadFile(path)
	if err != nil {
		return l, fmt.Errorf("--config: %w", err)
	}
	if err := json.Unmarshal(b, &l); err != nil {
		return l, fmt.Errorf("--config %s: %w", path, err)
	}
	return l, nil
}

// apply sets the fields the file names.
func (l live) apply(c *supervisor.Config) error {
	if l.Slots < 0 || l.MaxQueued < 0 || l.MaxQueuedPerTenant < 0 {
		return fmt.Errorf("--config: slots and queue bounds must not be negative")
	}
	if l.Slots > 0 {
		c.Slots = l.Slots
	}
	if l.MaxQueuedPerTenant > 0 {
		c.MaxQueuedPerTenant = l.MaxQueuedPerTenant
	}
	if l.MaxQueued > 0 {
		c.MaxQueued = l.MaxQueued
	}
	if l.MemoryBudget != "" {
		n, err := units.ParseSize(l.MemoryBudget)
		if err != nil || n < 32<<20 {
			return fmt.Errorf("--config: memory_budget %q: want a size of at least 32Mi", l.MemoryBudget)
		}
		c.MemoryBudget = n
	}
	return nil
}

// version is set at link time by release builds.
var version = "dev"

func versionText() string {
	commit, wazero := buildFacts()
	return fmt.Sprintf("agentboxd %s\ncommit:  %s\nwazero:  %s\ngo:      %s\n", version, commit, wazero, runtime.Version())
}

func buildFacts() (commit, wazero string) {
	commit, wazero = "unknown", "unknown"
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" {
				commit = s.Value
			}
		}
		for _, d := range info.Deps {
			if d.Path == "github.com/tetratelabs/wazero" {
				wazero = d.Version
			}
		}
	}
	return commit, wazero
}
