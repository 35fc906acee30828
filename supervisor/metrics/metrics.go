// Package metrics is what agentboxd tells Prometheus: tasks and attempts by outcome, retries,
// kills, rejections, queue wait / spawn / run latency, and gauges (queue depth, slots, memory
// budget, JetStream, the sandbox's warm pool and hot children) read from the service at
// scrape time.
//
// Every series is registered on the Registerer the caller hands in, never on the default
// registry, so a test or a second daemon in one process gets a clean set. Label values come
// from closed sets (outcome.All, verdict.Codes, kill reasons) and are all pre-initialised to 0:
// a dashboard sees a flat line for an outcome that never happened, not a gap, and rate()
// sees the first increment. No series is labelled by task: a task id label would grow the
// series count without bound and turn every scrape into a memory leak.
package metrics

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/agentbox/agentbox/outcome"
	"github.com/agentbox/agentbox/verdict"
)

// namespace prefixes every metric name, so one Prometheus can hold agentbox beside anything.
const namespace = "agentbox"

// invalidLabel is where a value outside its closed set is counted. It is a bug in the
// caller; counting it under one fixed value keeps it visible without letting the label grow.
const invalidLabel = "invalid"

// Metrics holds agentboxd's instruments. Its methods are safe for concurrent use and cheap
// enough for the hot path: each label value is bound once, in New.
type Metrics struct {
	reg prometheus.Registerer

	attempts *labelled // agentbox_attempts_total{outcome}
	tasks    *labelled // agentbox_tasks_total{outcome}
	retries  *labelled // agentbox_retries_total{reason}
	kills    *labelled // agentbox_kills_total{reason}
	rejected *labelled // agentbox_tasks_rejected_total{code}

	submitted   prometheus.Counter
	leakedCgrps prometheus.Counter
	leasesLost  prometheus.Counter

	queueWait prometheus.Histogram
	spawn     prometheus.Histogram
	run       prometheus.Histogram
}

// New registers agentboxd's metrics on reg and returns them. src is read at every scrape for
// the gauges (nil leaves them out, for a caller with no service behind it). Registering twice
// on one registry is a programming error and panics, as prometheus.MustRegister does.
func New(reg prometheus.Registerer, src Source, build BuildInfo) *Metrics {
	m := newInstruments(reg)
	reg.MustRegister(m.collectors()...)
	reg.MustRegister(newBuildInfo(build))
	if src != nil {
		reg.MustRegister(newSourceCollector(src))
	}
	if build.Runtime {
		registerRuntime(reg)
	}
	return m
}

// newInstruments builds every counter and histogram, with their label values bound.
func newInstruments(reg prometheus.Registerer) *Metrics {
	return &Metrics{
		reg: reg,
		attempts: newLabelled("attempts_total", "outcome", outcomeValues(),
			"Attempts finished, by outcome: every run of a task, retries included."),
		tasks: newLabelled("tasks_total", "outcome", outcomeValues(),
			"Tasks that reached their final verdict, by outcome."),
		retries: newLabelled("retries_total", "reason", outcomeValues(),
			"Attempts retried, by the outcome that caused the retry."),
		kills: newLabelled("kills_total", "reason", killReasonValues(),
			"Attempts killed at a limit: oom, pids, timeout, cpu, output."),
		rejected: newLabelled("tasks_rejected_total", "code", codeValues(),
			"Submissions refused before they were queued, by error code (queue_full is backpressure)."),
		submitted:   newCounter("tasks_submitted_total", "Tasks accepted into the queue."),
		leakedCgrps: newCounter("sweeper_leaked_cgroups_total", "Task cgroups the sweeper found left behind and removed."),
		leasesLost:  newCounter("leases_lost_total", "Running tasks whose lease this host lost (the task may run again elsewhere)."),
		queueWait:   newHistogram("task_queue_wait_seconds", "Time from submit to dispatch.", queueWaitBuckets),
		spawn:       newHistogram("task_spawn_seconds", "Time from dispatch to the guest's first instruction.", spawnBuckets),
		run:         newHistogram("task_run_seconds", "Time the guest ran, per attempt.", runBuckets),
	}
}

// collectors lists what New registers from the instruments themselves.
func (m *Metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{
		m.attempts.vec, m.tasks.vec, m.retries.vec, m.kills.vec, m.rejected.vec,
		m.submitted, m.leakedCgrps, m.leasesLost, m.queueWait, m.spawn, m.run,
	}
}

// AttemptFinished counts one attempt's outcome, and a kill when the outcome is one the
// supervisor or the kernel enforced by killing the task.
func (m *Metrics) AttemptFinished(o outcome.Outcome) {
	m.attempts.inc(string(o))
	if reason, ok := killReasons[o]; ok {
		m.kills.inc(reason)
	}
}

// TaskFinished counts a task's final verdict: once per task, whatever its attempts.
func (m *Metrics) TaskFinished(o outcome.Outcome) { m.tasks.inc(string(o)) }

// Retry counts an attempt that will be retried, labelled by the outcome that caused it.
func (m *Metrics) Retry(reason outcome.Outcome) { m.retries.inc(string(reason)) }

// Submitted counts a task accepted into the queue.
func (m *Metrics) Submitted() { m.submitted.Inc() }

// Rejected counts a refused submission; code is a verdict.Code (queue_full for backpressure).
func (m *Metrics) Rejected(code string) { m.rejected.inc(code) }

// ObserveQueueWait records how long a task waited between submit and dispatch.
func (m *Metrics) ObserveQueueWait(d time.Duration) { m.queueWait.Observe(d.Seconds()) }

// ObserveSpawn records dispatch to guest start: the sandbox's own overhead per task.
func (m *Metrics) ObserveSpawn(d time.Duration) { m.spawn.Observe(d.Seconds()) }

// ObserveRun records how long one attempt's guest ran.
func (m *Metrics) ObserveRun(d time.Duration) { m.run.Observe(d.Seconds()) }

// LeakedCgroups counts cgroups a sweep found left over (by a crash or a cleanup bug).
func (m *Metrics) LeakedCgroups(n int) {
	if n > 0 {
		m.leakedCgrps.Add(float64(n))
	}
}

// LeaseLost counts a running task whose lease this host lost: the task's execution is
// at-least-once from here, so operators want to see how often it happens.
func (m *Metrics) LeaseLost() { m.leasesLost.Inc() }

// Handler serves the metrics g gathers (usually the registry given to New, which may hold
// more than ours). A collector that fails does not blank the page: the rest is still
// served, and the failure is counted in promhttp_metric_handler_errors_total on our
// registry, so a broken Source shows up instead of hiding every other series.
func (m *Metrics) Handler(g prometheus.Gatherer) http.Handler {
	return promhttp.HandlerFor(g, promhttp.HandlerOpts{
		ErrorHandling: promhttp.ContinueOnError,
		Registry:      m.reg,
	})
}

// killReasons maps the outcomes that are kills to the reason label of agentbox_kills_total.
var killReasons = map[outcome.Outcome]string{
	outcome.MemoryLimit: "oom",
	outcome.PidsLimit:   "pids",
	outcome.Timeout:     "timeout",
	outcome.CPULimit:    "cpu",
	outcome.OutputLimit: "output",
}

// killReasonValues lists the reason labels in outcome.All's order.
func killReasonValues() []string {
	var out []string
	for _, o := range outcome.All {
		if r, ok := killReasons[o]; ok {
			out = append(out, r)
		}
	}
	return out
}

// outcomeValues lists every outcome as a label value.
func outcomeValues() []string {
	out := make([]string, len(outcome.All))
	for i, o := range outcome.All {
		out[i] = string(o)
	}
	return out
}

// codeValues lists every verdict.Code as a label value.
func codeValues() []string {
	out := make([]string, len(verdict.Codes))
	for i, c := range verdict.Codes {
		out[i] = string(c)
	}
	return out
}
