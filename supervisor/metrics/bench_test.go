package metrics

import (
	"bytes"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"

	"github.com/agentbox/agentbox/outcome"
)

// BenchmarkPrometheusExport is one scrape: gather every agentbox series (10 tenants, every
// outcome with samples, JetStream up) and encode it as the text format /metrics serves.
func BenchmarkPrometheusExport(b *testing.B) {
	m, reg := newTest(b, busySource(10), testBuild)
	for _, o := range outcome.All {
		m.AttemptFinished(o)
		m.TaskFinished(o)
		m.Retry(o)
	}
	exercise(m)
	var buf bytes.Buffer
	b.ReportAllocs()
	for b.Loop() {
		buf.Reset()
		fams, err := reg.Gather()
		if err != nil {
			b.Fatalf("gather: %v", err)
		}
		enc := expfmt.NewEncoder(&buf, expfmt.NewFormat(expfmt.TypeTextPlain))
		for _, f := range fams {
			if err := enc.Encode(f); err != nil {
				b.Fatalf("encode %s: %v", f.GetName(), err)
			}
		}
	}
	b.ReportMetric(float64(buf.Len()), "bytes/scrape")
}

// BenchmarkMetricsCollection is what one task costs the hot path: a submit, its queue wait,
// spawn and run, an attempt and a final verdict; run from every core at once, as the
// service's workers do.
func BenchmarkMetricsCollection(b *testing.B) {
	m, _ := newTest(b, busySource(10), testBuild)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			o := outcome.All[i%len(outcome.All)]
			m.Submitted()
			m.ObserveQueueWait(2 * time.Millisecond)
			m.ObserveSpawn(800 * time.Microsecond)
			m.ObserveRun(30 * time.Millisecond)
			m.AttemptFinished(o)
			m.TaskFinished(o)
			i++
		}
	})
}
