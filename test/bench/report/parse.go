package main

import (
	"bufio"
	"os"
	"regexp"
	"strconv"
	"strings"
)

// result is one line of `go test -bench` output: a benchmark, its b.N and its metrics by
// unit ("ns/op", "B/op", "run-p50-ms").
type result struct {
	pkg     string
	name    string // without the -GOMAXPROCS suffix
	n       int
	metrics map[string]float64
	units   []string // in the order printed
}

// benchOutput is everything the report reads from the output of `go test -bench`.
type benchOutput struct {
	results  []result
	cpu      string   // the "cpu:" header
	started  string   // the date of scripts/bench.sh's first line, "" without it
	load     string   // the load average it wrote at the end
	failures []string // "--- FAIL" and "FAIL pkg" lines
}

var procsSuffix = regexp.MustCompile(`-\d+$`)

// parseBench reads the standard benchmark lines ("BenchmarkX-2  N  v unit  v unit ...")
// and the headers before them.
func parseBench(path string) (benchOutput, error) {
	f, err := os.Open(path)
	if err != nil {
		return benchOutput{}, err
	}
	defer f.Close()
	var out benchOutput
	pkg := ""
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 1<<16), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "pkg: "):
			pkg = strings.TrimPrefix(line, "pkg: ")
		case strings.HasPrefix(line, "# make bench: "):
			out.started, _, _ = strings.Cut(strings.TrimPrefix(line, "# make bench: "), ",")
		case strings.HasPrefix(line, "# load average at the end: "):
			out.load = strings.Join(strings.Fields(strings.TrimPrefix(line, "# load average at the end: ")), " / ")
		case strings.HasPrefix(line, "cpu: "):
			out.cpu = strings.TrimPrefix(line, "cpu: ")
		case strings.HasPrefix(line, "--- FAIL"), strings.HasPrefix(line, "FAIL"):
			out.failures = append(out.failures, strings.TrimSpace(line))
		case strings.HasPrefix(line, "Benchmark"):
			if r, ok := parseLine(pkg, line); ok {
				out.results = append(out.results, r)
			}
		}
	}
	return out, sc.Err()
}

func parseLine(pkg, line string) (result, bool) {
	f := strings.Fields(line)
	if len(f) < 4 || len(f)%2 != 0 {
		return result{}, false
	}
	n, err := strconv.Atoi(f[1])
	if err != nil {
		return result{}, false
	}
	r := result{pkg: pkg, name: procsSuffix.ReplaceAllString(f[0], ""), n: n, metrics: map[string]float64{}}
	for i := 2; i+1 < len(f); i += 2 {
		v, err := strconv.ParseFloat(f[i], 64)
		if err != nil {
			return result{}, false
		}
		r.metrics[f[i+1]] = v
		r.units = append(r.units, f[i+1])
	}
	return r, true
}

// find returns the last result named name (a benchmark run twice keeps its last line).
func (o benchOutput) find(name string) (result, bool) {
	for i := len(o.results) - 1; i >= 0; i-- {
		if o.results[i].name == name {
			return o.results[i], true
		}
	}
	return result{}, false
}

// metric is one metric of one benchmark.
func (o benchOutput) metric(name, unit string) (float64, bool) {
	r, ok := o.find(name)
	if !ok {
		return 0, false
	}
	v, ok := r.metrics[unit]
	return v, ok
}
