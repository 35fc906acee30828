package bench

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/agentbox/agentbox/outcome"
	"github.com/agentbox/agentbox/supervisor/client"
	"github.com/agentbox/agentbox/supervisor/task"
)

// Throughput rounds: each way runs throughputTasks tiny tasks with throughputParallel at
// once (the daemon with as many slots).
const (
	throughputTasks    = 64
	throughputParallel = 8
)

// way is one way of running tiny tasks, a round at a time.
type way struct {
	*series              // per task: its wall time within the round
	rates   []float64    // tasks per second, one per round
	cpuMS   []float64    // CPU ms per task, one per round (rusage of the children, or the daemon's)
	round   func() error // runs throughputTasks tasks
}

// BenchmarkTaskThroughput is tiny tasks per second on this host, every verdict checked:
// the hello module through agentboxd (8 slots, one batch submit, then a wait on each),
// and `agentbox run` of it, bubblewrap and crun each 8 at once; one round of 64 tasks of
// every way per op, the ways in turn (the order rotates each round). CPU per task is the
// children's rusage (the daemon's own and its children's for the daemon).
func BenchmarkTaskThroughput(b *testing.B) {
	bin := agentboxBinary(b)
	d := startDaemon(b, filepath.Dir(bin), "--slots", fmt.Sprint(throughputParallel),
		"--memory-budget", fmt.Sprintf("%dMi", throughputParallel*64))
	c := d.client(b)
	digest := d.push(b, c, helloWAT)
	ways := []*way{daemonWay(b, d, c, digest)}
	run := execRunner("run", fmt.Sprintf("agentbox run, %d at once", throughputParallel), helloOutput,
		bin, "run", "--memory", "64Mi", "--cache-dir", d.cacheDir(), helloWAT)
	bwrap := bwrapRunner()
	bwrap.name = fmt.Sprintf("%s, %d at once", bwrap.name, throughputParallel)
	ways = append(ways, execWay(run, nil), execWay(bwrap, nil), crunWay(b))
	for _, w := range ways {
		if w.why == "" {
			if err := w.round(); err != nil {
				w.why = err.Error()
			}
		}
	}
	if ways[0].why != "" {
		b.Fatal(ways[0].why)
	}
	for _, w := range ways {
		w.wall, w.rates, w.cpuMS = nil, nil, nil // the warm-up round is not a sample
	}
	b.ResetTimer()
	for i := range b.N {
		for j := range ways {
			if w := ways[(i+j)%len(ways)]; w.why == "" {
				if err := w.round(); err != nil {
					b.Fatalf("%s: %v", w.name, err)
				}
			}
		}
	}
	b.StopTimer()
	values := map[string]float64{}
	var ss []*series
	for _, w := range ways {
		ss = append(ss, w.series)
		if w.why != "" {
			continue
		}
		rate, cpu := median(w.rates), median(w.cpuMS)
		b.ReportMetric(rate, w.key+"-tasks/s")
		b.ReportMetric(cpu, w.key+"-cpu-ms/task")
		values[w.key+"_tasks_per_s"], values[w.key+"_cpu_ms_per_task"] = rate, cpu
	}
	record(b, values, ss...)
}

// daemonWay submits a round as one batch and waits for each verdict.
func daemonWay(b *testing.B, d *daemon, c *client.Client, digest string) *way {
	w := &way{series: &series{key: "daemon", name: fmt.Sprintf("agentboxd, %d slots", throughputParallel)}}
	w.round = func() error {
		rs := make([]task.SubmitRequest, throughputTasks)
		for i := range rs {
			rs[i] = task.SubmitRequest{Module: digest, Limits: task.Limits{Memory: "64Mi"}}
		}
		cpu0 := d.cpu(b)
		start := time.Now()
		results, err := c.SubmitBatch(context.Background(), rs)
		if err != nil {
			return err
		}
		var mu sync.Mutex
		var bad error
		parallel(len(results), len(results), func(i int) {
			r := results[i]
			if r.Task == nil {
				mu.Lock()
				bad = fmt.Errorf("refused: %v", r.Error)
				mu.Unlock()
				return
			}
			final, err := c.Wait(context.Background(), r.Task.ID)
			took := time.Since(start)
			mu.Lock()
			defer mu.Unlock()
			if err != nil || final.Outcome() != outcome.OK {
				bad = fmt.Errorf("task %s: %s, %v", r.Task.ID, final.Outcome(), err)
			}
			w.add(took, -1)
		})
		elapsed := time.Since(start)
		w.rates = append(w.rates, throughputTasks/elapsed.Seconds())
		w.cpuMS = append(w.cpuMS, ms(d.cpu(b)-cpu0)/throughputTasks)
		return bad
	}
	return w
}

// execWay runs a round of r's command throughputParallel at once; pick gives worker k's
// runner (nil: r for all).
func execWay(r *runner, pick func(k int) *runner) *way {
	w := &way{series: r.series}
	if pick == nil {
		pick = func(int) *runner { return r }
	}
	w.round = func() error {
		var mu sync.Mutex
		var bad error
		var cpu time.Duration
		next := 0
		start := time.Now()
		parallel(throughputParallel, throughputParallel, func(k int) {
			for {
				mu.Lock()
				i := next
				next++
				mu.Unlock()
				if i >= throughputTasks {
					return
				}
				wall, c, err := pick(k).run()
				mu.Lock()
				if err != nil {
					bad = err
				}
				w.series.add(wall, -1)
				cpu += c
				mu.Unlock()
			}
		})
		elapsed := time.Since(start)
		w.rates = append(w.rates, throughputTasks/elapsed.Seconds())
		w.cpuMS = append(w.cpuMS, ms(cpu)/throughputTasks)
		return bad
	}
	return w
}

// crunWay is crun through its launcher, worker k on bundle k (a cgroup of its own).
func crunWay(b *testing.B) *way {
	name := fmt.Sprintf("%s, %d at once", crunName, throughputParallel)
	c, why := startCrun(b, throughputParallel)
	if why != "" {
		return &way{series: &series{key: crunKey, name: name, why: why}}
	}
	workers := make([]*runner, throughputParallel)
	for k := range workers {
		workers[k] = c.runner(k)
	}
	workers[0].name = name
	return execWay(workers[0], func(k int) *runner { return workers[k] })
}

// median of v (the lower middle for an even count), 0 for none.
func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return s[(len(s)-1)/2]
}
