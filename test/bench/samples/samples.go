// Package samples is the one shape of the raw samples that the end-to-end benchmarks
// (test/bench) write and the report generator (test/bench/report) reads: one JSON object a
// line, appended to the file named by $AGENTBOX_BENCH_SAMPLES. Quantiles in `go test
// -bench` output are enough for a table; a distribution plot needs every sample.
package samples

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"sync"
)

// Env names the file that benchmarks append their samples to; unset, nothing is written.
const Env = "AGENTBOX_BENCH_SAMPLES"

// Record is one series of one benchmark run: every sample of it, or why it could not run.
type Record struct {
	// Bench is the benchmark's name as `go test` prints it, without the -GOMAXPROCS suffix
	// ("BenchmarkAgentSpawnLatency", "BenchmarkConcurrentScaling/100").
	Bench string `json:"bench"`
	// Series is what was measured ("agentbox run", "bwrap --unshare-all", ...).
	Series string `json:"series"`
	// Key is the short name the benchmark's metrics use for the series ("run", "bwrap").
	Key string `json:"key"`
	// N is the benchmark's b.N: a benchmark function runs more than once (b.N = 1 first),
	// and the report keeps the record of the largest N.
	N int `json:"n"`
	// WallMS and CPUMS are the samples, in milliseconds; CPU is user + system time of the
	// process and every descendant it reaped (rusage), where it can be measured.
	WallMS []float64 `json:"wall_ms,omitempty"`
	CPUMS  []float64 `json:"cpu_ms,omitempty"`
	// Values are other figures of the run, by name ("tasks_per_s", "bytes_per_agent").
	Values map[string]float64 `json:"values,omitempty"`
	// Unavailable says why the series could not run on this host (the report says so).
	Unavailable string `json:"unavailable,omitempty"`
}

var mu sync.Mutex

// Append writes r to the file named by $AGENTBOX_BENCH_SAMPLES, if it is set.
func Append(r Record) error {
	path := os.Getenv(Env)
	if path == "" {
		return nil
	}
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("samples of %s/%s: %w", r.Bench, r.Series, err)
	}
	mu.Lock()
	defer mu.Unlock()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("samples file: %w", err)
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return fmt.Errorf("samples file %s: %w", path, err)
	}
	return f.Close()
}

// Read returns the records of path, keeping for each benchmark and series the one of
// the largest N (the last among equals).
func Read(path string) ([]Record, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []Record
	at := map[[2]string]int{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 1<<20), 64<<20)
	for line := 1; sc.Scan(); line++ {
		var r Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, line, err)
		}
		k := [2]string{r.Bench, r.Series}
		if i, ok := at[k]; ok {
			if r.N >= out[i].N {
				out[i] = r
			}
			continue
		}
		at[k] = len(out)
		out = append(out, r)
	}
	return out, sc.Err()
}
