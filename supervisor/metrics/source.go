package metrics

import "github.com/prometheus/client_golang/prometheus"

// Source is the service's live state, read at every scrape. Reading it then, rather than
// mirroring each change into a gauge, means a gauge can never drift from the truth when a
// code path forgets to update it. Its methods are called concurrently with the service and
// with each other, and must be cheap: a scrape waits for them.
type Source interface {
	// QueueDepth maps each tenant to its queued tasks. Tenants come from the tokens file, so
	// the label set is bounded; include tenants with nothing queued, as 0, so their series
	// does not vanish and reappear.
	QueueDepth() map[string]int
	// Running is the number of tasks running now.
	Running() int
	// Slots is the concurrency in use and its bound.
	Slots() (inUse, total int)
	// Memory is the sum of running tasks' memory limits and the budget that bounds it.
	Memory() (inUseBytes, budgetBytes uint64)
	// JetStream is the state of the JetStream the daemon uses.
	JetStream() JetStreamStats
	// Pool is the state of the sandbox's warm pool and of its hot children.
	Pool() PoolStats
}

// PoolStats is the sandbox's warm pool and hot children. Its fields are those of
// sandbox.PoolStats, in the same order, so one converts to the other.
type PoolStats struct {
	Size   int   // children the warm pool keeps
	Ready  int   // warm pool children waiting for a task now
	Failed int64 // warm pool children that could not be started, since the sandbox started

	HotSize   int   // module digests that may keep a hot child (--hot-modules)
	HotReady  int   // hot children waiting for a task of their module now
	HotUsed   int64 // tasks that ran in a hot child, since the sandbox started
	HotFailed int64 // hot children that could not be made ready, since the sandbox started
}

// JetStreamStats is JetStream's state as its monitor reports it. Its fields are those of
// natsd.Stats, in the same order, so one converts to the other.
type JetStreamStats struct {
	// OK: JetStream is enabled and answering. When false, only agentbox_jetstream_up (0) is
	// exported: zeros for the rest would read as an empty store, not an unknown one.
	OK                 bool
	Streams, Consumers int
	// Messages and Bytes are what the streams hold.
	Messages, Bytes uint64
	// StorageBytes and MemoryBytes are the file and memory storage JetStream uses.
	StorageBytes, MemoryBytes uint64
	// APIErrors counts JetStream API calls that failed, since the server started.
	APIErrors uint64
}

// sourceCollector turns a Source into gauges at scrape time.
type sourceCollector struct {
	src Source

	queueDepth, running, slotsInUse, slots, memInUse, memBudget *prometheus.Desc

	poolSize, poolReady, poolFailed       *prometheus.Desc
	hotSize, hotReady, hotUsed, hotFailed *prometheus.Desc

	jsUp, jsStreams, jsConsumers, jsMessages, jsBytes, jsStorage, jsMemory, jsAPIErrors *prometheus.Desc
}

// newSourceCollector describes every gauge the Source feeds.
func newSourceCollector(src Source) *sourceCollector {
	return &sourceCollector{
		src:         src,
		queueDepth:  desc("queue_depth", "Tasks queued, by tenant.", "tenant"),
		running:     desc("running_tasks", "Tasks running now."),
		slotsInUse:  desc("slots_in_use", "Concurrency slots taken by running tasks."),
		slots:       desc("slots", "Concurrency slots configured."),
		memInUse:    desc("memory_budget_in_use_bytes", "Sum of running tasks' memory limits."),
		memBudget:   desc("memory_budget_bytes", "Memory budget that bounds the sum of running tasks' limits."),
		jsUp:        desc("jetstream_up", "1 if JetStream is enabled and answering, else 0."),
		jsStreams:   desc("jetstream_streams", "JetStream streams."),
		jsConsumers: desc("jetstream_consumers", "JetStream consumers."),
		jsMessages:  desc("jetstream_messages", "Messages held in JetStream streams."),
		jsBytes:     desc("jetstream_bytes", "Bytes of messages held in JetStream streams."),
		jsStorage:   desc("jetstream_storage_bytes", "File storage JetStream uses."),
		jsMemory:    desc("jetstream_memory_bytes", "Memory storage JetStream uses."),
		jsAPIErrors: desc("jetstream_api_errors_total", "JetStream API calls that failed."),
		poolSize:    desc("warm_pool_size", "Sandbox children the warm pool keeps ready for tasks."),
		poolReady:   desc("warm_pool_ready", "Warm pool children waiting for a task now."),
		poolFailed:  desc("warm_pool_start_failures_total", "Warm pool children that could not be started."),
		hotSize:     desc("hot_modules", "Module digests that may keep a hot child: a sandbox child with the module's code loaded, ready for its next task."),
		hotReady:    desc("hot_children_ready", "Hot children waiting for a task of their module now."),
		hotUsed:     desc("hot_tasks_total", "Tasks that ran in a hot child."),
		hotFailed:   desc("hot_start_failures_total", "Hot children that could not be made ready."),
	}
}

// desc names a scrape-time metric agentbox_<name>.
func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(prometheus.BuildFQName(namespace, "", name), help, labels, nil)
}

// Describe sends every Desc, so the registry checks names and labels at registration.
func (c *sourceCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		c.queueDepth, c.running, c.slotsInUse, c.slots, c.memInUse, c.memBudget,
		c.jsUp, c.jsStreams, c.jsConsumers, c.jsMessages, c.jsBytes, c.jsStorage, c.jsMemory, c.jsAPIErrors,
		c.poolSize, c.poolReady, c.poolFailed, c.hotSize, c.hotReady, c.hotUsed, c.hotFailed,
	} {
		ch <- d
	}
}

// Collect reads the Source once per scrape.
func (c *sourceCollector) Collect(ch chan<- prometheus.Metric) {
	c.collectScheduler(ch)
	c.collectPool(ch, c.src.Pool())
	c.collectJetStream(ch, c.src.JetStream())
}

// collectScheduler sends queue depth, running tasks, slots and the memory budget.
func (c *sourceCollector) collectScheduler(ch chan<- prometheus.Metric) {
	for tenant, n := range c.src.QueueDepth() {
		ch <- gauge(c.queueDepth, float64(n), tenant)
	}
	ch <- gauge(c.running, float64(c.src.Running()))
	inUse, total := c.src.Slots()
	ch <- gauge(c.slotsInUse, float64(inUse))
	ch <- gauge(c.slots, float64(total))
	memInUse, budget := c.src.Memory()
	ch <- gauge(c.memInUse, float64(memInUse))
	ch <- gauge(c.memBudget, float64(budget))
}

// collectPool sends the warm pool's and the hot children's state.
func (c *sourceCollector) collectPool(ch chan<- prometheus.Metric, p PoolStats) {
	ch <- gauge(c.poolSize, float64(p.Size))
	ch <- gauge(c.poolReady, float64(p.Ready))
	ch <- counter(c.poolFailed, float64(p.Failed))
	ch <- gauge(c.hotSize, float64(p.HotSize))
	ch <- gauge(c.hotReady, float64(p.HotReady))
	ch <- counter(c.hotUsed, float64(p.HotUsed))
	ch <- counter(c.hotFailed, float64(p.HotFailed))
}

// collectJetStream sends JetStream's health, and its figures only when it answered.
func (c *sourceCollector) collectJetStream(ch chan<- prometheus.Metric, js JetStreamStats) {
	if !js.OK {
		ch <- gauge(c.jsUp, 0)
		return
	}
	ch <- gauge(c.jsUp, 1)
	ch <- gauge(c.jsStreams, float64(js.Streams))
	ch <- gauge(c.jsConsumers, float64(js.Consumers))
	ch <- gauge(c.jsMessages, float64(js.Messages))
	ch <- gauge(c.jsBytes, float64(js.Bytes))
	ch <- gauge(c.jsStorage, float64(js.StorageBytes))
	ch <- gauge(c.jsMemory, float64(js.MemoryBytes))
	ch <- counter(c.jsAPIErrors, float64(js.APIErrors))
}

// gauge makes one scrape-time gauge sample.
func gauge(d *prometheus.Desc, v float64, labels ...string) prometheus.Metric {
	return prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
}

// counter makes one scrape-time counter sample, of a count the Source keeps.
func counter(d *prometheus.Desc, v float64) prometheus.Metric {
	return prometheus.MustNewConstMetric(d, prometheus.CounterValue, v)
}
