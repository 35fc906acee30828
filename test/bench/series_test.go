package bench

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/agentbox/agentbox/test/bench/samples"
)

// series is the samples of one thing measured, or why it could not be measured here.
type series struct {
	key  string // short name in metrics ("run", "bwrap")
	name string // what it is, for the report
	wall []time.Duration
	cpu  []time.Duration // empty where CPU time cannot be measured
	why  string          // non-empty: unavailable on this host, and why
}

func (s *series) add(wall, cpu time.Duration) {
	s.wall = append(s.wall, wall)
	if cpu >= 0 {
		s.cpu = append(s.cpu, cpu)
	}
}

// quantile returns the q-quantile (nearest rank) of d, or 0 for no samples.
func quantile(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	sorted := slices.Clone(d)
	slices.Sort(sorted)
	return sorted[int(q*float64(len(sorted)-1)+0.5)]
}

func ms(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e6 }

// report adds p50, p99 and CPU per run (p50) of s to b's metrics.
func (s *series) report(b *testing.B) {
	if s.why != "" || len(s.wall) == 0 {
		return
	}
	b.ReportMetric(ms(quantile(s.wall, 0.5)), s.key+"-p50-ms")
	b.ReportMetric(ms(quantile(s.wall, 0.99)), s.key+"-p99-ms")
	if len(s.cpu) > 0 {
		b.ReportMetric(ms(quantile(s.cpu, 0.5)), s.key+"-cpu-ms")
	}
}

// ratios adds of/s at p50 and p99 to b's metrics, for every available baseline s.
func ratios(b *testing.B, of *series, baselines ...*series) {
	for _, s := range baselines {
		if s.why != "" || len(s.wall) == 0 || len(of.wall) == 0 {
			continue
		}
		for _, q := range []float64{0.5, 0.99} {
			b.ReportMetric(float64(quantile(of.wall, q))/float64(quantile(s.wall, q)), fmt.Sprintf("%s/%s-p%d", of.key, s.key, int(q*100)))
		}
	}
}

// record appends every series to the samples file, with extra figures on the first.
func record(b *testing.B, values map[string]float64, ss ...*series) {
	b.Helper()
	for i, s := range ss {
		r := samples.Record{Bench: b.Name(), Series: s.name, Key: s.key, N: b.N, Unavailable: s.why}
		for _, d := range s.wall {
			r.WallMS = append(r.WallMS, ms(d))
		}
		for _, d := range s.cpu {
			r.CPUMS = append(r.CPUMS, ms(d))
		}
		if i == 0 {
			r.Values = values
		}
		if err := samples.Append(r); err != nil {
			b.Fatal(err)
		}
	}
}
