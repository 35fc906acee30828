package metrics

import (
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// BuildInfo says which binary is running, for agentbox_build_info. A dashboard that shows
// a latency change next to a version change saves a bisect; the wazero version is there
// because it compiles every guest.
type BuildInfo struct {
	Version, Commit, GoVersion, WazeroVersion string
	// Runtime also registers the Go runtime and process collectors (go_*, process_*): the
	// daemon's own memory, goroutines and open fds, which a soak run watches for leaks.
	// Tests leave it off for a registry that holds only agentbox_*.
	Runtime bool
}

// unknown stands for a build fact the binary does not carry. An empty label value would
// drop the label from the series altogether.
const unknown = "unknown"

// BinaryBuildInfo reads the Go version, VCS commit and wazero version the toolchain
// recorded in this binary; version is the release version set at link time, if any.
// A build without VCS stamping (-buildvcs=false) has Commit "unknown".
func BinaryBuildInfo(version string) BuildInfo {
	b := BuildInfo{Version: version}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return b
	}
	b.GoVersion = info.GoVersion
	for _, s := range info.Settings {
		if s.Key == "vcs.revision" {
			b.Commit = s.Value
		}
	}
	for _, d := range info.Deps {
		if d.Path == "github.com/tetratelabs/wazero" {
			b.WazeroVersion = d.Version
		}
	}
	return b
}

// newBuildInfo is the constant agentbox_build_info{version,commit,go_version,wazero_version} 1.
func newBuildInfo(b BuildInfo) prometheus.Collector {
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: namespace,
		Name:      "build_info",
		Help:      "Always 1; the labels say which agentboxd build is running.",
		ConstLabels: prometheus.Labels{
			"version":        orUnknown(b.Version),
			"commit":         orUnknown(b.Commit),
			"go_version":     orUnknown(b.GoVersion),
			"wazero_version": orUnknown(b.WazeroVersion),
		},
	})
	g.Set(1)
	return g
}

// orUnknown keeps a label present when its value is missing.
func orUnknown(s string) string {
	if s == "" {
		return unknown
	}
	return s
}

// registerRuntime adds the Go runtime and process collectors to reg.
func registerRuntime(reg prometheus.Registerer) {
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
}
