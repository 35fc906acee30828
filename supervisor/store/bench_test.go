package store

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/agentbox/agentbox/supervisor/natsd"
	"github.com/agentbox/agentbox/supervisor/natsd/natsdtest"
	"github.com/agentbox/agentbox/supervisor/task"
)

// BenchmarkQueueOperations measures the queue through the store on a real embedded
// JetStream in a temporary dir, as the daemon opens it (file storage, fsync on every write
// before it is acknowledged): publish (Enqueue, what a submit adds to its record's
// create), fetch and ack (Next, then the double ack a final task gets), the whole round
// trip, and a submit's two writes (CreateTask, then Enqueue). "publish-no-fsync" is the
// same publish with JetStream's own 2-minute sync interval: what fsync costs.
func BenchmarkQueueOperations(b *testing.B) {
	ctx := context.Background()
	b.Run("publish", func(b *testing.B) {
		st := benchStore(b, 0)
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			id := fmt.Sprintf("p%d", i)
			if err := st.Enqueue(ctx, "a", task.Normal, id, id); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("publish-no-fsync", func(b *testing.B) {
		st := benchStore(b, 2*time.Minute)
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			id := fmt.Sprintf("p%d", i)
			if err := st.Enqueue(ctx, "a", task.Normal, id, id); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("fetch-ack", func(b *testing.B) {
		st := benchStore(b, 0)
		for i := range b.N {
			id := fmt.Sprintf("f%d", i)
			if err := st.Enqueue(ctx, "a", task.Normal, id, id); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportAllocs()
		b.ResetTimer()
		empty := 0
		for range b.N {
			empty += fetchAck(b, st)
		}
		b.ReportMetric(float64(empty)/float64(b.N), "empty-fetches/op")
	})
	b.Run("roundtrip", func(b *testing.B) {
		st := benchStore(b, 0)
		if _, err := st.Consumer(ctx, "a", task.Normal); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		empty, n := 0, 0
		for b.Loop() {
			id := fmt.Sprintf("r%d", n)
			if err := st.Enqueue(ctx, "a", task.Normal, id, id); err != nil {
				b.Fatal(err)
			}
			empty += fetchAck(b, st)
			n++
		}
		b.ReportMetric(float64(empty)/float64(n), "empty-fetches/op")
	})
	b.Run("submit-record-and-publish", func(b *testing.B) {
		st := benchStore(b, 0)
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			id := fmt.Sprintf("s%d", i)
			if err := st.CreateTask(ctx, benchTask(id)); err != nil {
				b.Fatal(err)
			}
			if err := st.Enqueue(ctx, "a", task.Normal, id, id); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// fetchAck takes the next message of tenant a and double-acks it. A fetch right after a
// publish can find the consumer not yet aware of the message (the daemon's dispatch then
// looks again): fetchAck fetches again, and returns how many fetches came back empty.
func fetchAck(b *testing.B, st *Store) (empty int) {
	deadline := time.Now().Add(time.Minute)
	for {
		m, err := st.Next(context.Background(), "a", task.Normal)
		if err != nil {
			b.Fatalf("Next: %v", err)
		}
		if m != nil {
			if err := m.DoubleAck(context.Background()); err != nil {
				b.Fatal(err)
			}
			return empty
		}
		if empty++; time.Now().After(deadline) {
			b.Fatalf("no message in 1m (%d empty fetches)", empty)
		}
	}
}

// benchStore opens a store on an embedded JetStream of its own in a temporary dir; a
// syncInterval of 0 fsyncs every write (the daemon's default).
func benchStore(b *testing.B, syncInterval time.Duration) *Store {
	b.Helper()
	js := natsdtest.JetStream(b, natsd.Options{SyncInterval: syncInterval})
	st, err := Open(context.Background(), js, Config{Lease: 30 * time.Second, MaxAckPending: 1 << 20, Retention: time.Hour})
	if err != nil {
		b.Fatalf("Open: %v", err)
	}
	return st
}

// benchTask is a queued record as a submit creates it.
func benchTask(id string) *task.Task {
	t := newTask(id)
	t.Module = "a3f1c0d2e4b5a6978812345678901234567890abcdef0123456789abcdef0123"
	t.Args = []string{"alice", "bob"}
	return t
}
