package bench

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/agentbox/agentbox/internal/syncbuf"
	"github.com/agentbox/agentbox/outcome"
	"github.com/agentbox/agentbox/supervisor/client"
	"github.com/agentbox/agentbox/supervisor/task"
)

// BenchmarkDaemonSubmitToVerdict measures the hello module through agentboxd (submit, then
// wait for the final record) against `agentbox run` of the same module and against bare
// wazero instantiating it from code compiled beforehand (a hot child's floor), interleaved
// in one run, and the daemon's submit→guest start (the guest's first stdout byte, as the
// attempt records it). Both sides spawn from the same agentbox-init and share one compile cache.
// The daemon's CPU per task is its own and its reaped children's (the tasks'), over the
// whole run, divided by the tasks.
func BenchmarkDaemonSubmitToVerdict(b *testing.B) { benchDaemon(b, helloWAT, helloOutput) }

// BenchmarkDaemonHotGoModule is the same with the 2.5 MB Go example, its compiled code
// cached (the upload compiled it): the hot-module case of issue 9.
func BenchmarkDaemonHotGoModule(b *testing.B) { benchDaemon(b, helloGo, "hello") }

func benchDaemon(b *testing.B, module, want string) {
	bin := agentboxBinary(b)
	// The daemon as it ships (its warm pool and hot children), one without hot children and
	// one with neither, side by side.
	type way struct {
		d              *daemon
		c              *client.Client
		digest         string
		verdict, guest *series
		steps          []*series // one per daemonSteps entry
		cpuKey         string
		cpu0           time.Duration
		scrape         time.Duration // the daemon's CPU for one /metrics scrape of ours, at rest
		scrapes0       int64
	}
	var ways []*way
	// And the first again with JetStream's fsyncs relaxed: what the durability writes on a
	// task's path cost.
	for _, v := range []struct{ key, flags string }{{"daemon", ""}, {"daemon-nohot", "--hot-modules 0"},
		{"daemon-nopool", "--warm-pool 0 --hot-modules 0"}, {"daemon-nosync", "--sync-interval 1s"}} {
		name := strings.TrimSpace("agentboxd " + v.flags)
		w := &way{d: startDaemon(b, filepath.Dir(bin), strings.Fields(v.flags)...),
			verdict: &series{key: v.key + "-verdict", name: name + " submit→verdict"},
			guest:   &series{key: v.key + "-guest-start", name: name + " submit→guest start"},
			cpuKey:  v.key + "-cpu-ms/task"}
		for _, st := range daemonSteps {
			w.steps = append(w.steps, &series{key: v.key + "-step-" + st, name: name + ": " + st})
		}
		ways = append(ways, w)
	}
	for _, w := range ways {
		w.c = w.d.client(b)
		w.digest = w.d.push(b, w.c, module)
	}
	submit := func(w *way) {
		start := time.Now()
		tk, err := w.c.Submit(context.Background(), task.SubmitRequest{Module: w.digest})
		if err != nil {
			b.Fatal(err)
		}
		final, err := w.c.Wait(context.Background(), tk.ID)
		end := time.Now()
		w.verdict.add(end.Sub(start), -1)
		if err != nil || final.Outcome() != outcome.OK {
			b.Fatalf("task %s: %s %v", tk.ID, final.Outcome(), err)
		}
		a := final.Attempts[len(final.Attempts)-1]
		if a.FirstOutputAt == nil || a.EndedAt == nil {
			b.Fatalf("task %s: its attempt has no first output or end: %+v", tk.ID, a)
		}
		w.guest.add(a.FirstOutputAt.Sub(final.CreatedAt), -1)
		// The daemon's stamps share the host's wall clock with ours.
		marks := []time.Time{start, final.CreatedAt, a.StartedAt, *a.FirstOutputAt, *a.EndedAt, end}
		for i, st := range w.steps {
			st.add(marks[i+1].Sub(marks[i]), -1)
		}
	}
	run := execRunner("run", "agentbox run", want, bin, "run", "--cache-dir", ways[0].d.cacheDir(), module)
	for _, w := range ways {
		// The warm-up: the compile, the cache's first read, and the second run after which
		// a digest has a hot child.
		submit(w)
		submit(w)
		w.verdict.wall, w.guest.wall = nil, nil
		for _, st := range w.steps {
			st.wall = nil
		}
	}
	run.probe()
	if run.why != "" {
		b.Fatal(run.why)
	}
	floor := instantiateRunner(b, module, want)
	floor.sample(b) // the warm-up
	floor.wall, floor.cpu = nil, nil
	// Each daemon's CPU over the whole run, divided by its tasks: a pooled or hot one's
	// includes its refill (the children still waiting at the end were started in the run
	// but are not counted: only reaped children are).
	for _, w := range ways {
		w.d.atRest(b)
		w.scrape = w.d.scrapeCPU(b)
		w.scrapes0, w.cpu0 = w.d.scrapes.Load(), w.d.cpu(b)
	}
	b.ResetTimer()
	for range b.N {
		for _, w := range ways {
			submit(w)
			// Its refill and warm-up done before the next sample: not beside another's.
			w.d.atRest(b)
		}
		run.sample(b)
		floor.sample(b)
	}
	b.StopTimer()
	var ss []*series
	extra := map[string]float64{}
	for _, w := range ways {
		// Less what our own scrapes (atRest's) cost it.
		scrapes := time.Duration(w.d.scrapes.Load() - w.scrapes0)
		cpu := ms(w.d.cpu(b)-w.cpu0-scrapes*w.scrape) / float64(b.N)
		b.ReportMetric(cpu, w.cpuKey)
		extra[strings.NewReplacer("-", "_", "/", "_per_").Replace(w.cpuKey)] = cpu
		ss = append(ss, w.verdict, w.guest)
		ss = append(ss, w.steps...)
	}
	ss = append(ss, run.series, floor.series)
	for _, s := range ss {
		s.report(b)
	}
	b.ReportMetric(float64(quantile(ways[0].verdict.wall, 0.5))/float64(quantile(run.wall, 0.5)), "daemon/run-p50-ratio")
	record(b, extra, ss...)
}

// daemonSteps split a task's submit→verdict at the stamps its record carries: the
// record's creation, the attempt's start, the guest's first byte and the attempt's end
// (test/bench/report's daemonStepText says what each step holds).
var daemonSteps = []string{"accept", "queue", "spawn", "run", "final"}

// daemon is one agentboxd in a temporary dir.
type daemon struct {
	dir, socket string
	cmd         *exec.Cmd
	log         *syncbuf.Buffer
	scrapes     atomic.Int64 // of /metrics, by metrics
}

// startDaemon starts bin/agentboxd (args after the temporary dirs) on a socket in a
// temporary dir and returns once /readyz answers; it is stopped with SIGTERM at the end.
func startDaemon(b *testing.B, binDir string, args ...string) *daemon {
	b.Helper()
	dir := b.TempDir()
	d := &daemon{dir: dir, socket: filepath.Join(dir, "agentboxd.sock"), log: &syncbuf.Buffer{}}
	d.cmd = exec.Command(filepath.Join(binDir, "agentboxd"), append([]string{"--state-dir", filepath.Join(dir, "state"),
		"--socket", d.socket, "--cache-dir", d.cacheDir(), "--grace", "1s"}, args...)...)
	d.cmd.Stdout, d.cmd.Stderr = d.log, d.log
	if err := d.cmd.Start(); err != nil {
		b.Fatalf("start agentboxd (make build): %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- d.cmd.Wait() }()
	b.Cleanup(func() {
		d.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(2 * time.Minute):
			d.cmd.Process.Kill()
			<-exited
			b.Errorf("agentboxd did not stop on SIGTERM in 2m")
		}
	})
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true, DialContext: d.dial}}
	deadline := time.Now().Add(3 * time.Minute)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			b.Fatalf("agentboxd exited: %v\n%s", err, d.log)
		default:
		}
		if resp, err := hc.Get("http://agentboxd/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return d
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	b.Fatalf("agentboxd not ready in 3m:\n%s", d.log)
	return nil
}

func (d *daemon) cacheDir() string { return filepath.Join(d.dir, "cache") }
func (d *daemon) pid() int         { return d.cmd.Process.Pid }

func (d *daemon) dial(ctx context.Context, _, _ string) (net.Conn, error) {
	var dl net.Dialer
	return dl.DialContext(ctx, "unix", d.socket)
}

func (d *daemon) client(b *testing.B) *client.Client {
	b.Helper()
	c, err := client.New("unix://"+d.socket, "")
	if err != nil {
		b.Fatal(err)
	}
	return c
}

// push uploads a module and returns its digest.
func (d *daemon) push(b *testing.B, c *client.Client, path string) string {
	b.Helper()
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		b.Fatal(err)
	}
	m, err := c.PushModule(context.Background(), f, st.Size())
	if err != nil {
		b.Fatalf("push %s: %v", path, err)
	}
	return m.Digest
}

// cpu is the daemon's CPU time so far: its own and that of every child it reaped (the
// tasks' sandbox children), from /proc/PID/stat.
// metric reads one unlabelled sample from the daemon's /metrics.
func (d *daemon) metric(b *testing.B, name string) float64 {
	b.Helper()
	v, ok := d.metrics(b)[name]
	if !ok {
		b.Fatalf("no metric %s in /metrics", name)
	}
	return v
}

// metrics reads every unlabelled sample of one scrape of the daemon's /metrics.
func (d *daemon) metrics(b *testing.B) map[string]float64 {
	b.Helper()
	d.scrapes.Add(1)
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true, DialContext: d.dial}}
	resp, err := hc.Get("http://agentboxd/metrics")
	if err != nil {
		b.Fatalf("metrics: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		b.Fatalf("metrics: %v", err)
	}
	out := map[string]float64{}
	for _, line := range strings.Split(string(body), "\n") {
		name, v, ok := strings.Cut(line, " ")
		if !ok || strings.HasPrefix(line, "#") || strings.Contains(name, "{") {
			continue
		}
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			b.Fatalf("metric %s: %q", name, line)
		}
		out[name] = f
	}
	return out
}

// atRest waits until the daemon's warm pool is full and each of its hot modules has its
// child ready, as its /metrics say (a daemon without them is always at rest).
func (d *daemon) atRest(b *testing.B) {
	b.Helper()
	for {
		m := d.metrics(b) // one scrape a look: each costs the daemon CPU, counted in its CPU per task
		if m["agentbox_warm_pool_size"] == m["agentbox_warm_pool_ready"] &&
			(m["agentbox_hot_modules"] == 0 || m["agentbox_hot_children_ready"] >= 1) {
			return
		}
		if m["agentbox_warm_pool_start_failures_total"]+m["agentbox_hot_start_failures_total"] > 0 {
			b.Fatalf("agentboxd failed to start a pool or hot child:\n%s", d.log)
		}
		time.Sleep(2 * time.Millisecond) // a refill takes longer: few scrapes a task
	}
}

// scrapeCPU is the daemon's CPU for one scrape of its /metrics, over many at rest (its
// CPU time counts in ticks of 10 ms).
func (d *daemon) scrapeCPU(b *testing.B) time.Duration {
	const n = 200
	c0 := d.cpu(b)
	for range n {
		d.metrics(b)
	}
	return (d.cpu(b) - c0) / n
}

func (d *daemon) cpu(b *testing.B) time.Duration {
	b.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", d.pid()))
	if err != nil {
		b.Fatal(err)
	}
	// Fields after "(comm)": state is 3rd; utime, stime, cutime, cstime are 14th to 17th.
	f := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+1:]))
	var ticks int64
	for _, s := range f[11:15] {
		n, _ := strconv.ParseInt(s, 10, 64)
		ticks += n
	}
	return time.Duration(ticks) * time.Second / clockTicks
}

// clockTicks is USER_HZ, the unit of /proc/PID/stat's times: 100 on every Linux that Go
// supports (sysconf(_SC_CLK_TCK)).
const clockTicks = 100
