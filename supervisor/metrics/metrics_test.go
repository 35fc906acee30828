package metrics

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/agentbox/agentbox/outcome"
	"github.com/agentbox/agentbox/verdict"
)

// fakeSource is a Source with fixed answers.
type fakeSource struct {
	depth         map[string]int
	running       int
	inUse, total  int
	memIn, budget uint64
	js            JetStreamStats
	pool          PoolStats
}

func (f *fakeSource) QueueDepth() map[string]int     { return f.depth }
func (f *fakeSource) Running() int                   { return f.running }
func (f *fakeSource) Slots() (int, int)              { return f.inUse, f.total }
func (f *fakeSource) Memory() (uint64, uint64)       { return f.memIn, f.budget }
func (f *fakeSource) JetStream() JetStreamStats      { return f.js }
func (f *fakeSource) Pool() PoolStats                { return f.pool }
func (f *fakeSource) withJetStreamDown() *fakeSource { f.js = JetStreamStats{}; return f }

// busySource answers as a host with n tenants and a healthy JetStream.
func busySource(tenants int) *fakeSource {
	depth := make(map[string]int, tenants)
	for i := range tenants {
		depth[fmt.Sprintf("tenant-%02d", i)] = i * 3
	}
	return &fakeSource{
		depth: depth, running: 3, inUse: 3, total: 8, memIn: 768 << 20, budget: 4 << 30,
		pool: PoolStats{Size: 4, Ready: 2, Failed: 1, HotSize: 8, HotReady: 3, HotUsed: 17, HotFailed: 5},
		js: JetStreamStats{OK: true, Streams: 2, Consumers: 5, Messages: 42, Bytes: 4096,
			StorageBytes: 8192, MemoryBytes: 512, APIErrors: 1},
	}
}

var testBuild = BuildInfo{Version: "v1.2.3", Commit: "abc123", GoVersion: "go1.26.0", WazeroVersion: "v1.12.0"}

// newTest registers metrics on a fresh registry.
func newTest(t testing.TB, src Source, build BuildInfo) (*Metrics, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	return New(reg, src, build), reg
}

// sample gathers reg and returns the value of name{labels}: a counter's or gauge's value,
// a histogram's sample count. It fails the test when the series is absent.
func sample(t testing.TB, reg prometheus.Gatherer, name string, labels map[string]string) float64 {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if hasLabels(m, labels) {
				return value(m)
			}
		}
	}
	t.Fatalf("no series %s%v among the gathered metrics", name, labels)
	return 0
}

// hasLabels reports whether m carries every label in want.
func hasLabels(m *dto.Metric, want map[string]string) bool {
	got := map[string]string{}
	for _, l := range m.GetLabel() {
		got[l.GetName()] = l.GetValue()
	}
	for k, v := range want {
		if got[k] != v {
			return false
		}
	}
	return true
}

// value reads one sample whatever its type.
func value(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.GetCounter().GetValue()
	case m.Gauge != nil:
		return m.GetGauge().GetValue()
	case m.Histogram != nil:
		return float64(m.GetHistogram().GetSampleCount())
	}
	return m.GetUntyped().GetValue()
}

func TestLint(t *testing.T) {
	tests := []struct {
		name string
		src  Source
	}{
		{name: "busy host", src: busySource(10)},
		{name: "jetstream down", src: busySource(1).withJetStreamDown()},
		{name: "no source", src: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, reg := newTest(t, tt.src, testBuild)
			exercise(m)
			problems, err := testutil.GatherAndLint(reg)
			if err != nil {
				t.Fatalf("lint: %v", err)
			}
			for _, p := range problems {
				t.Errorf("lint: %s: %s", p.Metric, p.Text)
			}
		})
	}
}

// exercise calls every method once, so that lint sees every series with a sample.
func exercise(m *Metrics) {
	m.AttemptFinished(outcome.MemoryLimit)
	m.TaskFinished(outcome.OK)
	m.Retry(outcome.SandboxError)
	m.Submitted()
	m.Rejected(string(verdict.QueueFull))
	m.ObserveQueueWait(time.Millisecond)
	m.ObserveSpawn(time.Millisecond)
	m.ObserveRun(time.Second)
	m.LeakedCgroups(2)
	m.LeaseLost()
}

func TestMethodsMoveTheirMetric(t *testing.T) {
	tests := []struct {
		name   string
		call   func(m *Metrics)
		metric string
		labels map[string]string
		want   float64
	}{
		{"attempt", func(m *Metrics) { m.AttemptFinished(outcome.Trap) }, "agentbox_attempts_total", map[string]string{"outcome": "trap"}, 1},
		{"task", func(m *Metrics) { m.TaskFinished(outcome.Exit) }, "agentbox_tasks_total", map[string]string{"outcome": "exit"}, 1},
		{"retry", func(m *Metrics) { m.Retry(outcome.SandboxError) }, "agentbox_retries_total", map[string]string{"reason": "sandbox_error"}, 1},
		{"submitted", func(m *Metrics) { m.Submitted(); m.Submitted() }, "agentbox_tasks_submitted_total", nil, 2},
		{"rejected", func(m *Metrics) { m.Rejected("queue_full") }, "agentbox_tasks_rejected_total", map[string]string{"code": "queue_full"}, 1},
		{"queue wait", func(m *Metrics) { m.ObserveQueueWait(time.Second) }, "agentbox_task_queue_wait_seconds", nil, 1},
		{"spawn", func(m *Metrics) { m.ObserveSpawn(700 * time.Microsecond) }, "agentbox_task_spawn_seconds", nil, 1},
		{"run", func(m *Metrics) { m.ObserveRun(3 * time.Second) }, "agentbox_task_run_seconds", nil, 1},
		{"leaked cgroups", func(m *Metrics) { m.LeakedCgroups(3) }, "agentbox_sweeper_leaked_cgroups_total", nil, 3},
		{"leaked cgroups ignores a negative count", func(m *Metrics) { m.LeakedCgroups(-1) }, "agentbox_sweeper_leaked_cgroups_total", nil, 0},
		{"lease lost", func(m *Metrics) { m.LeaseLost() }, "agentbox_leases_lost_total", nil, 1},
		{"invalid outcome counts as invalid", func(m *Metrics) { m.TaskFinished("bogus") }, "agentbox_tasks_total", map[string]string{"outcome": invalidLabel}, 1},
		{"unknown code counts as invalid", func(m *Metrics) { m.Rejected("teapot") }, "agentbox_tasks_rejected_total", map[string]string{"code": invalidLabel}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, reg := newTest(t, nil, testBuild)
			tt.call(m)
			if got := sample(t, reg, tt.metric, tt.labels); got != tt.want {
				t.Errorf("%s%v = %v, want %v", tt.metric, tt.labels, got, tt.want)
			}
		})
	}
}

func TestAttemptFinishedCountsKills(t *testing.T) {
	tests := []struct {
		name   string
		o      outcome.Outcome
		reason string // "" when the outcome is no kill
	}{
		{name: "memory limit is an oom kill", o: outcome.MemoryLimit, reason: "oom"},
		{name: "pids limit", o: outcome.PidsLimit, reason: "pids"},
		{name: "timeout", o: outcome.Timeout, reason: "timeout"},
		{name: "cpu limit", o: outcome.CPULimit, reason: "cpu"},
		{name: "output limit", o: outcome.OutputLimit, reason: "output"},
		{name: "ok is no kill", o: outcome.OK},
		{name: "trap is no kill", o: outcome.Trap},
		{name: "sandbox error is no kill", o: outcome.SandboxError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, _ := newTest(t, nil, testBuild)
			m.AttemptFinished(tt.o)
			if got := testutil.ToFloat64(m.attempts.bound[string(tt.o)]); got != 1 {
				t.Errorf("attempts{outcome=%q} = %v, want 1", tt.o, got)
			}
			for _, r := range killReasonValues() {
				want := 0.0
				if r == tt.reason {
					want = 1
				}
				if got := testutil.ToFloat64(m.kills.bound[r]); got != want {
					t.Errorf("kills{reason=%q} = %v, want %v", r, got, want)
				}
			}
		})
	}
}

func TestLabelValuesArePreinitialised(t *testing.T) {
	tests := []struct {
		name   string
		metric string
		label  string
		values []string
	}{
		{name: "attempts", metric: "agentbox_attempts_total", label: "outcome", values: outcomeValues()},
		{name: "tasks", metric: "agentbox_tasks_total", label: "outcome", values: outcomeValues()},
		{name: "retries", metric: "agentbox_retries_total", label: "reason", values: outcomeValues()},
		{name: "kills", metric: "agentbox_kills_total", label: "reason", values: []string{"oom", "pids", "timeout", "cpu", "output"}},
		{name: "rejected", metric: "agentbox_tasks_rejected_total", label: "code", values: codeValues()},
	}
	_, reg := newTest(t, nil, testBuild)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, v := range tt.values {
				if got := sample(t, reg, tt.metric, map[string]string{tt.label: v}); got != 0 {
					t.Errorf("%s{%s=%q} = %v before any call, want 0", tt.metric, tt.label, v, got)
				}
			}
			if n := testutil.CollectAndCount(reg, tt.metric); n != len(tt.values) {
				t.Errorf("%s has %d series, want exactly the %d of its closed set", tt.metric, n, len(tt.values))
			}
		})
	}
}

func TestNoTaskLabel(t *testing.T) {
	forbidden := map[string]bool{"id": true, "task": true, "task_id": true, "taskid": true, "attempt": true}
	m, reg := newTest(t, busySource(10), BuildInfo{Runtime: true})
	exercise(m)
	fams, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, f := range fams {
		for _, s := range f.GetMetric() {
			for _, l := range s.GetLabel() {
				if forbidden[strings.ToLower(l.GetName())] {
					t.Errorf("%s has label %q: a per-task label grows the series without bound", f.GetName(), l.GetName())
				}
			}
		}
	}
}

func TestSourceGauges(t *testing.T) {
	src := busySource(2)
	src.depth = map[string]int{"acme": 4, "globex": 0}
	_, reg := newTest(t, src, testBuild)
	want := `
# HELP agentbox_hot_children_ready Hot children waiting for a task of their module now.
# TYPE agentbox_hot_children_ready gauge
agentbox_hot_children_ready 3
# HELP agentbox_hot_modules Module digests that may keep a hot child: a sandbox child with the module's code loaded, ready for its next task.
# TYPE agentbox_hot_modules gauge
agentbox_hot_modules 8
# HELP agentbox_hot_start_failures_total Hot children that could not be made ready.
# TYPE agentbox_hot_start_failures_total counter
agentbox_hot_start_failures_total 5
# HELP agentbox_hot_tasks_total Tasks that ran in a hot child.
# TYPE agentbox_hot_tasks_total counter
agentbox_hot_tasks_total 17
# HELP agentbox_jetstream_api_errors_total JetStream API calls that failed.
# TYPE agentbox_jetstream_api_errors_total counter
agentbox_jetstream_api_errors_total 1
# HELP agentbox_jetstream_bytes Bytes of messages held in JetStream streams.
# TYPE agentbox_jetstream_bytes gauge
agentbox_jetstream_bytes 4096
# HELP agentbox_jetstream_consumers JetStream consumers.
# TYPE agentbox_jetstream_consumers gauge
agentbox_jetstream_consumers 5
# HELP agentbox_jetstream_memory_bytes Memory storage JetStream uses.
# TYPE agentbox_jetstream_memory_bytes gauge
agentbox_jetstream_memory_bytes 512
# HELP agentbox_jetstream_messages Messages held in JetStream streams.
# TYPE agentbox_jetstream_messages gauge
agentbox_jetstream_messages 42
# HELP agentbox_jetstream_storage_bytes File storage JetStream uses.
# TYPE agentbox_jetstream_storage_bytes gauge
agentbox_jetstream_storage_bytes 8192
# HELP agentbox_jetstream_streams JetStream streams.
# TYPE agentbox_jetstream_streams gauge
agentbox_jetstream_streams 2
# HELP agentbox_jetstream_up 1 if JetStream is enabled and answering, else 0.
# TYPE agentbox_jetstream_up gauge
agentbox_jetstream_up 1
# HELP agentbox_memory_budget_bytes Memory budget that bounds the sum of running tasks' limits.
# TYPE agentbox_memory_budget_bytes gauge
agentbox_memory_budget_bytes 4.294967296e+09
# HELP agentbox_memory_budget_in_use_bytes Sum of running tasks' memory limits.
# TYPE agentbox_memory_budget_in_use_bytes gauge
agentbox_memory_budget_in_use_bytes 8.05306368e+08
# HELP agentbox_queue_depth Tasks queued, by tenant.
# TYPE agentbox_queue_depth gauge
agentbox_queue_depth{tenant="acme"} 4
agentbox_queue_depth{tenant="globex"} 0
# HELP agentbox_running_tasks Tasks running now.
# TYPE agentbox_running_tasks gauge
agentbox_running_tasks 3
# HELP agentbox_slots Concurrency slots configured.
# TYPE agentbox_slots gauge
agentbox_slots 8
# HELP agentbox_slots_in_use Concurrency slots taken by running tasks.
# TYPE agentbox_slots_in_use gauge
agentbox_slots_in_use 3
# HELP agentbox_warm_pool_ready Warm pool children waiting for a task now.
# TYPE agentbox_warm_pool_ready gauge
agentbox_warm_pool_ready 2
# HELP agentbox_warm_pool_size Sandbox children the warm pool keeps ready for tasks.
# TYPE agentbox_warm_pool_size gauge
agentbox_warm_pool_size 4
# HELP agentbox_warm_pool_start_failures_total Warm pool children that could not be started.
# TYPE agentbox_warm_pool_start_failures_total counter
agentbox_warm_pool_start_failures_total 1
`
	names := []string{
		"agentbox_hot_children_ready", "agentbox_hot_modules", "agentbox_hot_start_failures_total", "agentbox_hot_tasks_total",
		"agentbox_jetstream_api_errors_total", "agentbox_jetstream_bytes", "agentbox_jetstream_consumers",
		"agentbox_jetstream_memory_bytes", "agentbox_jetstream_messages", "agentbox_jetstream_storage_bytes",
		"agentbox_jetstream_streams", "agentbox_jetstream_up", "agentbox_memory_budget_bytes",
		"agentbox_memory_budget_in_use_bytes", "agentbox_queue_depth", "agentbox_running_tasks",
		"agentbox_slots", "agentbox_slots_in_use", "agentbox_warm_pool_ready", "agentbox_warm_pool_size",
		"agentbox_warm_pool_start_failures_total",
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), names...); err != nil {
		t.Error(err)
	}
}

func TestJetStreamDownExportsOnlyUp(t *testing.T) {
	_, reg := newTest(t, busySource(1).withJetStreamDown(), testBuild)
	if got := sample(t, reg, "agentbox_jetstream_up", nil); got != 0 {
		t.Errorf("agentbox_jetstream_up = %v with JetStream down, want 0", got)
	}
	for _, name := range []string{"agentbox_jetstream_streams", "agentbox_jetstream_messages", "agentbox_jetstream_api_errors_total"} {
		if n, err := testutil.GatherAndCount(reg, name); err != nil || n != 0 {
			t.Errorf("%s: %d series (err %v) with JetStream down, want none", name, n, err)
		}
	}
}

func TestBuildInfo(t *testing.T) {
	tests := []struct {
		name  string
		build BuildInfo
		want  string
	}{
		{name: "full", build: testBuild,
			want: `agentbox_build_info{commit="abc123",go_version="go1.26.0",version="v1.2.3",wazero_version="v1.12.0"} 1`},
		{name: "missing facts say unknown", build: BuildInfo{Version: "dev"},
			want: `agentbox_build_info{commit="unknown",go_version="unknown",version="dev",wazero_version="unknown"} 1`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, reg := newTest(t, nil, tt.build)
			exp := "# HELP agentbox_build_info Always 1; the labels say which agentboxd build is running.\n" +
				"# TYPE agentbox_build_info gauge\n" + tt.want + "\n"
			if err := testutil.GatherAndCompare(reg, strings.NewReader(exp), "agentbox_build_info"); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestBinaryBuildInfo(t *testing.T) {
	b := BinaryBuildInfo("v9")
	if b.Version != "v9" || !strings.HasPrefix(b.GoVersion, "go") {
		t.Errorf("BinaryBuildInfo(%q) = %+v, want the version kept and a Go version read", "v9", b)
	}
}

func TestRuntimeCollectors(t *testing.T) {
	tests := []struct {
		name    string
		runtime bool
		want    bool
	}{
		{name: "off leaves the registry to agentbox_*", runtime: false, want: false},
		{name: "on adds go_* and process_*", runtime: true, want: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, reg := newTest(t, nil, BuildInfo{Runtime: tt.runtime})
			n, err := testutil.GatherAndCount(reg, "go_goroutines")
			if err != nil {
				t.Fatalf("gather: %v", err)
			}
			if got := n > 0; got != tt.want {
				t.Errorf("go_goroutines present = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestHandlerServesTheRegistry(t *testing.T) {
	m, reg := newTest(t, busySource(2), testBuild)
	m.TaskFinished(outcome.OK)
	srv := httptest.NewServer(m.Handler(reg))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatalf("GET %s: %v", srv.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	for _, want := range []string{`agentbox_tasks_total{outcome="ok"} 1`, "agentbox_build_info{", "agentbox_queue_depth{tenant="} {
		if !strings.Contains(string(body), want) {
			t.Errorf("GET /metrics lacks %q; got:\n%s", want, body)
		}
	}
}

// TestConcurrentUse hammers the hot path while scrapes run, for -race.
func TestConcurrentUse(t *testing.T) {
	m, reg := newTest(t, busySource(10), testBuild)
	const workers, calls = 8, 500
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range calls {
				m.AttemptFinished(outcome.All[(w+i)%len(outcome.All)])
				m.ObserveSpawn(time.Duration(i) * time.Microsecond)
			}
		})
	}
	wg.Go(func() {
		for range 20 {
			if _, err := reg.Gather(); err != nil {
				t.Errorf("gather during updates: %v", err)
			}
		}
	})
	wg.Wait()
	var total float64
	for _, c := range m.attempts.bound {
		total += testutil.ToFloat64(c)
	}
	if total != workers*calls {
		t.Errorf("attempts counted %v, want %d", total, workers*calls)
	}
}
