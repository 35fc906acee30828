package metrics

import "github.com/prometheus/client_golang/prometheus"

// Buckets, in seconds. Each set spans what its phase can take and puts edges on the
// targets operators judge it by (issue 9: submit→guest start p50 ≤ 1 ms, p99 ≤ 5 ms), since
// histogram_quantile can only be exact at a bucket edge.
var (
	// queueWaitBuckets: from an idle host (sub-millisecond) to a backlog of an hour.
	queueWaitBuckets = []float64{0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600}
	// spawnBuckets: a warm-pool handoff is well under a millisecond, a cold spawn tens of ms.
	spawnBuckets = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5}
	// runBuckets: from a hello module (a millisecond) to the longest timeout we would allow.
	runBuckets = []float64{0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600}
)

// labelled is a counter vector over one closed set of label values, each bound in advance:
// the hot path is a map lookup and an atomic add, and every value is exported from the
// first scrape on.
type labelled struct {
	vec   *prometheus.CounterVec
	bound map[string]prometheus.Counter
}

// newLabelled makes the vector agentbox_<name>{label} and binds every value to 0.
func newLabelled(name, label string, values []string, help string) *labelled {
	vec := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: name, Help: help}, []string{label})
	l := &labelled{vec: vec, bound: make(map[string]prometheus.Counter, len(values))}
	for _, v := range values {
		l.bound[v] = vec.WithLabelValues(v)
	}
	return l
}

// inc counts one for value, or for invalidLabel when value is outside the closed set.
func (l *labelled) inc(value string) {
	c, ok := l.bound[value]
	if !ok {
		c = l.vec.WithLabelValues(invalidLabel)
	}
	c.Inc()
}

// newCounter makes the unlabelled counter agentbox_<name>.
func newCounter(name, help string) prometheus.Counter {
	return prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Name: name, Help: help})
}

// newHistogram makes the unlabelled histogram agentbox_<name> with the given buckets.
func newHistogram(name, help string, buckets []float64) prometheus.Histogram {
	return prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: namespace, Name: name, Help: help, Buckets: buckets})
}
