package daemon

import (
	"context"
	"fmt"
	"net"
	"testing"

	"github.com/agentbox/agentbox/outcome"
	"github.com/agentbox/agentbox/supervisor/task"
)

// TestTwoDaemonsOneJetStream: a second daemon pointed at the first one's JetStream with
// --nats runs the very same code against an external server: a task submitted to either
// host is visible, waitable and cancellable from the other, and both hosts run tasks.
func TestTwoDaemonsOneJetStream(t *testing.T) {
	port := freePort(t)
	a := startDaemon(t, options{args: []string{"--nats-listen", fmt.Sprintf("127.0.0.1:%d", port), "--host-id", "host-a", "--slots", "1"}})
	b := startDaemon(t, options{args: []string{"--nats", fmt.Sprintf("nats://127.0.0.1:%d", port), "--host-id", "host-b", "--slots", "1"}})
	ca, cb := a.client(""), b.client("")
	ctx := context.Background()
	digest := push(t, ca, countModule)
	if m, err := cb.GetModule(ctx, digest); err != nil || m.Digest != digest {
		t.Fatalf("host b does not see the module pushed to host a: %v", err)
	}
	var ids []string
	for i := 0; i < 6; i++ {
		c := ca
		if i%2 == 1 {
			c = cb
		}
		tk, err := c.Submit(ctx, task.SubmitRequest{Module: digest})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, tk.ID)
	}
	for i, id := range ids {
		other := cb
		if i%2 == 1 {
			other = ca
		}
		final := waitFinal(t, other, id) // waited on from the host it was not submitted to
		if final.Outcome() != outcome.OK {
			t.Errorf("task %s: %s", id, final.Outcome())
		}
	}
	// Two tasks that each hold a host's only slot for their whole 3s timeout: whichever
	// host takes the first, the second can run only on the other.
	loop := push(t, ca, loopModule)
	hosts := map[string]bool{}
	var long []string
	for i := 0; i < 2; i++ {
		tk, err := ca.Submit(ctx, task.SubmitRequest{Module: loop, Limits: task.Limits{Timeout: "3s"}})
		if err != nil {
			t.Fatal(err)
		}
		long = append(long, tk.ID)
	}
	for _, id := range long {
		final := waitFinal(t, cb, id)
		if final.Outcome() != outcome.Timeout || len(final.Attempts) != 1 {
			t.Fatalf("task %s: %s after %d attempts, want timeout after 1", id, final.Outcome(), len(final.Attempts))
		}
		hosts[final.Attempts[0].Host] = true
	}
	if !hosts["host-a"] || !hosts["host-b"] {
		t.Errorf("the two one-slot tasks ran on %v, want one on each host", hosts)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
