package store

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/agentbox/agentbox/supervisor/task"
)

// Subject is the queue subject of a tenant's tasks of one priority.
func Subject(tenant string, p task.Priority) string {
	return "agentbox.queue." + tenant + "." + string(p)
}

func durable(tenant string, p task.Priority) string { return "q-" + tenant + "-" + string(p) }

// Enqueue publishes the dispatch message of task id. The message carries only the id:
// the record is the truth, and a delivery only says "look at this task". msgID makes a
// republish within two minutes a no-op (JetStream's duplicate window).
func (s *Store) Enqueue(ctx context.Context, tenant string, p task.Priority, id, msgID string) error {
	m := nats.NewMsg(Subject(tenant, p))
	m.Data = []byte(id)
	if _, err := s.js.PublishMsg(ctx, m, jetstream.WithMsgID(msgID)); err != nil {
		return fmt.Errorf("enqueue task %s: %w", id, err)
	}
	return nil
}

// Consumer returns the durable pull consumer of a tenant's priority, creating it on first
// use. MaxDeliver is unlimited: a message that reached a MaxDeliver would stay in the
// stream undelivered with its task never final; attempts are bounded by the record's
// retry policy instead, counted on every delivery that starts one.
func (s *Store) Consumer(ctx context.Context, tenant string, p task.Priority) (jetstream.Consumer, error) {
	name := durable(tenant, p)
	s.mu.Lock()
	c, ok := s.consumers[name]
	s.mu.Unlock()
	if ok {
		return c, nil
	}
	c, err := s.queue.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
		Durable:       name,
		FilterSubject: Subject(tenant, p),
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       s.cfg.Lease,
		MaxDeliver:    -1,
		MaxAckPending: s.cfg.MaxAckPending,
		// No backoff list: the nak delays are the daemon's own (retry backoff, waiting
		// for a live lease to end).
	})
	if err != nil {
		return nil, fmt.Errorf("consumer %s: %w", name, err)
	}
	s.mu.Lock()
	s.consumers[name] = c
	s.mu.Unlock()
	return c, nil
}

// Next fetches one message of a tenant's priority without waiting; nil when there is none.
func (s *Store) Next(ctx context.Context, tenant string, p task.Priority) (jetstream.Msg, error) {
	c, err := s.Consumer(ctx, tenant, p)
	if err != nil {
		return nil, err
	}
	batch, err := c.FetchNoWait(1)
	if err != nil {
		return nil, fmt.Errorf("fetch from %s: %w", durable(tenant, p), err)
	}
	for m := range batch.Messages() {
		return m, nil
	}
	if err := batch.Error(); err != nil && err != nats.ErrTimeout {
		return nil, fmt.Errorf("fetch from %s: %w", durable(tenant, p), err)
	}
	return nil, nil
}

// Age is how long ago a message was published.
func Age(m jetstream.Msg, now time.Time) time.Duration {
	md, err := m.Metadata()
	if err != nil {
		return 0
	}
	return now.Sub(md.Timestamp)
}
