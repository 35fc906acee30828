// Command report writes bench/REPORT.md and its latency plot from one `make bench` run:
// the output of `go test -bench` (standard benchmark lines) and the raw samples that the
// end-to-end benchmarks appended to $AGENTBOX_BENCH_SAMPLES (test/bench/samples).
//
//	go run ./test/bench/report -bench bench/bench-output.txt -samples bench/samples.jsonl \
//	    -out bench/REPORT.md -plot bench/latency.png
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/agentbox/agentbox/test/bench/samples"
)

func main() {
	benchPath := flag.String("bench", "bench/bench-output.txt", "output of go test -bench")
	samplesPath := flag.String("samples", "bench/samples.jsonl", "raw samples ($AGENTBOX_BENCH_SAMPLES)")
	outPath := flag.String("out", "bench/REPORT.md", "the report")
	plotPath := flag.String("plot", "bench/latency.png", "the latency-distribution plot (PNG), beside the report")
	profilePath := flag.String("profile", "", "perf script -F comm,ip,sym,dso output of -profile-runs cold runs (none: no profile section)")
	profileRuns := flag.Int("profile-runs", 0, "how many runs the profile holds")
	profilePeriod := flag.Float64("profile-period-ms", 0.25, "CPU milliseconds per perf sample (perf record -c)")
	daemonPath := flag.String("daemon-profile", "", "perf script output of agentboxd and its children over -daemon-profile-tasks tasks (none: no daemon profile section)")
	daemonTasks := flag.Int("daemon-profile-tasks", 0, "how many tasks the daemon's profile holds")
	daemonSlots := flag.Int("daemon-profile-slots", 0, "the profiled daemon's --slots")
	daemonRusage := flag.Float64("daemon-profile-rusage-ms", 0, "the profiled daemon's CPU per task over the same window, from /proc/PID/stat")
	daemonWall := flag.Float64("daemon-profile-wall-s", 0, "wall seconds the profiled tasks took")
	childBinary := flag.String("child-binary", "bin/agentbox-init", "the agentbox-init the profiled daemon's children ran from a memfd copy of, to name their frames")
	flag.Parse()
	var prof *profile
	if *profilePath != "" {
		var err error
		if prof, err = parseProfile(*profilePath, *profileRuns, *profilePeriod, nil); err != nil || *profileRuns <= 0 {
			fmt.Fprintf(os.Stderr, "report: profile %s of %d runs: %v\n", *profilePath, *profileRuns, err)
			os.Exit(1)
		}
	}
	var dprof *daemonProfile
	if *daemonPath != "" {
		child, err := loadSymbols(*childBinary)
		if err != nil {
			// The children's frames stay unnamed: their CPU lands in "everything else".
			fmt.Fprintf(os.Stderr, "report: the children's frames are not named: %v\n", err)
		}
		p, err := parseProfile(*daemonPath, *daemonTasks, *profilePeriod, child)
		if err != nil || *daemonTasks <= 0 || *daemonWall <= 0 || *daemonRusage <= 0 || *daemonSlots <= 0 {
			fmt.Fprintf(os.Stderr, "report: daemon profile %s of %d tasks in %gs: %v\n", *daemonPath, *daemonTasks, *daemonWall, err)
			os.Exit(1)
		}
		dprof = &daemonProfile{profile: p, slots: *daemonSlots, rusageMS: *daemonRusage, wallSeconds: *daemonWall}
	}
	if err := run(*benchPath, *samplesPath, *outPath, *plotPath, prof, dprof); err != nil {
		fmt.Fprintln(os.Stderr, "report:", err)
		os.Exit(1)
	}
}

func run(benchPath, samplesPath, outPath, plotPath string, prof *profile, dprof *daemonProfile) error {
	out, err := parseBench(benchPath)
	if err != nil {
		return fmt.Errorf("benchmark output: %w", err)
	}
	recs, err := samples.Read(samplesPath)
	if err != nil {
		return fmt.Errorf("samples: %w", err)
	}
	d := data{out: out, recs: recs, machine: probeMachine(out), profile: prof, daemonProfile: dprof}
	if err := writePlot(plotPath, d); err != nil {
		return fmt.Errorf("plot: %w", err)
	}
	rel, err := filepath.Rel(filepath.Dir(outPath), plotPath)
	if err != nil {
		rel = plotPath
	}
	var md bytes.Buffer
	writeReport(&md, d, rel, filepath.Base(benchPath), filepath.Base(samplesPath))
	return os.WriteFile(outPath, md.Bytes(), 0o644)
}

// data is everything the report is made of.
type data struct {
	out           benchOutput
	recs          []samples.Record
	machine       machine
	profile       *profile       // nil when the run took none (no perf)
	daemonProfile *daemonProfile // likewise
}

// series returns the records of one benchmark, in the order written.
func (d data) series(bench string) []samples.Record {
	var out []samples.Record
	for _, r := range d.recs {
		if r.Bench == bench {
			out = append(out, r)
		}
	}
	return out
}

// record returns the record of bench whose key is key.
func (d data) record(bench, key string) (samples.Record, bool) {
	for _, r := range d.series(bench) {
		if r.Key == key {
			return r, true
		}
	}
	return samples.Record{}, false
}
