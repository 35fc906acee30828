package bench

import (
	"context"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/agentbox/agentbox/outcome"
	"github.com/agentbox/agentbox/supervisor/client"
	"github.com/agentbox/agentbox/supervisor/task"
)

// BenchmarkDaemonSubmitToVerdict measures the hello module through agentboxd (submit, then
// wait for the final record) against `agentbox run` of the same module, interleaved in one
// run, and the daemon's submit→guest start (the guest's first stdout byte, as the attempt
// records it). Both sides spawn from the same agentbox-init and share one compile cache.
func BenchmarkDaemonSubmitToVerdict(b *testing.B) {
	bin := binary(b)
	d := startDaemon(b, filepath.Dir(bin))
	c, err := client.New("unix://"+d, "")
	if err != nil {
		b.Fatal(err)
	}
	module := filepath.Join("..", "..", "testdata", "modules", "hello.wasm")
	f, err := os.Open(module)
	if err != nil {
		b.Fatal(err)
	}
	st, _ := f.Stat()
	m, err := c.PushModule(context.Background(), f, st.Size())
	f.Close()
	if err != nil {
		b.Fatal(err)
	}
	cache := filepath.Join(filepath.Dir(d), "cache")
	submit := func() (verdict, guestStart time.Duration) {
		start := time.Now()
		tk, err := c.Submit(context.Background(), task.SubmitRequest{Module: m.Digest})
		if err != nil {
			b.Fatal(err)
		}
		final, err := c.Wait(context.Background(), tk.ID)
		verdict = time.Since(start)
		if err != nil || final.Outcome() != outcome.OK {
			b.Fatalf("task %s: %s %v", tk.ID, final.Outcome(), err)
		}
		if a := final.Attempts[len(final.Attempts)-1]; a.FirstOutputAt != nil {
			guestStart = a.FirstOutputAt.Sub(final.CreatedAt)
		}
		return verdict, guestStart
	}
	submit()
	timed(b, bin, "run", "--cache-dir", cache, module)
	var viaDaemon, guest, viaRun []time.Duration
	b.ResetTimer()
	for range b.N {
		v, g := submit()
		viaDaemon, guest = append(viaDaemon, v), append(guest, g)
		viaRun = append(viaRun, timed(b, bin, "run", "--cache-dir", cache, module))
	}
	b.StopTimer()
	for _, s := range [][]time.Duration{viaDaemon, guest, viaRun} {
		slices.Sort(s)
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	b.ReportMetric(ms(quantile(viaDaemon, 0.5)), "daemon-verdict-p50-ms")
	b.ReportMetric(ms(quantile(viaDaemon, 0.99)), "daemon-verdict-p99-ms")
	b.ReportMetric(ms(quantile(guest, 0.5)), "daemon-guest-start-p50-ms")
	b.ReportMetric(ms(quantile(guest, 0.99)), "daemon-guest-start-p99-ms")
	b.ReportMetric(ms(quantile(viaRun, 0.5)), "run-p50-ms")
	b.ReportMetric(ms(quantile(viaRun, 0.99)), "run-p99-ms")
	b.ReportMetric(float64(quantile(viaDaemon, 0.5))/float64(quantile(viaRun, 0.5)), "daemon/run-p50-ratio")
}

// startDaemon starts bin/agentboxd on a socket in a temporary dir and returns the socket
// once /readyz answers; the daemon is stopped with SIGTERM at the end.
func startDaemon(b *testing.B, binDir string) string {
	b.Helper()
	dir := b.TempDir()
	sock := filepath.Join(dir, "agentboxd.sock")
	cmd := exec.Command(filepath.Join(binDir, "agentboxd"), "--state-dir", filepath.Join(dir, "state"),
		"--socket", sock, "--cache-dir", filepath.Join(dir, "cache"))
	if err := cmd.Start(); err != nil {
		b.Fatalf("start agentboxd (make build): %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	b.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		<-exited
	})
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	}}}
	deadline := time.Now().Add(3 * time.Minute)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			b.Fatalf("agentboxd exited: %v", err)
		default:
		}
		if resp, err := hc.Get("http://agentboxd/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return sock
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	b.Fatal("agentboxd not ready in 3m")
	return ""
}
