// Package store is the daemon's state in JetStream, and nothing else: one KV record per
// task (every change a compare-and-set on its revision), a KV bucket of idempotency keys,
// an Object Store of modules by tenant and digest, an Object Store of stdin and full
// verdicts, and a WorkQueue stream with a subject per tenant and priority, each drained by
// a durable pull consumer. The same code serves the embedded server and a cluster; only
// Config.Replicas differs.
package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Names of the JetStream resources (one set per NATS account).
const (
	TasksBucket   = "agentbox-tasks"
	IdemBucket    = "agentbox-idempotency"
	ModulesBucket = "agentbox-modules"
	BlobsBucket   = "agentbox-blobs"
	QueueStream   = "AGENTBOX_QUEUE"
	queueSubjects = "agentbox.queue.>"
)

// Config shapes the resources.
type Config struct {
	// Replicas of every stream and bucket: 1 on one host, 3 on a cluster.
	Replicas int
	// Lease is the consumers' AckWait: a delivery not acknowledged nor marked in progress
	// for this long is delivered again. Holders heartbeat every Lease/3.
	Lease time.Duration
	// MaxAckPending per consumer. Deliveries stall silently at this bound, so it must exceed
	// everything one tenant can have in flight: running tasks plus retries in backoff (a
	// nak with delay stays pending). The daemon sets it above its tenant queue bound.
	MaxAckPending int
	// Retention bounds idempotency keys' life (their bucket's TTL).
	Retention time.Duration
}

// Errors callers branch on.
var (
	ErrNotFound = errors.New("not found")
	// ErrConflict: the record changed since it was read (the CAS lost).
	ErrConflict = errors.New("record changed since it was read")
)

// Store holds the handles.
type Store struct {
	js      jetstream.JetStream
	cfg     Config
	tasks   jetstream.KeyValue
	idem    jetstream.KeyValue
	modules jetstream.ObjectStore
	blobs   jetstream.ObjectStore
	queue   jetstream.Stream

	mu        sync.Mutex
	consumers map[string]jetstream.Consumer // by durable name
}

// Open creates or updates every resource and returns the store.
func Open(ctx context.Context, js jetstream.JetStream, cfg Config) (*Store, error) {
	if cfg.Replicas == 0 {
		cfg.Replicas = 1
	}
	s := &Store{js: js, cfg: cfg, consumers: map[string]jetstream.Consumer{}}
	var err error
	if s.tasks, err = js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: TasksBucket, History: 1,
		Storage: jetstream.FileStorage, Replicas: cfg.Replicas, MaxValueSize: 1 << 20}); err != nil {
		return nil, fmt.Errorf("kv bucket %s: %w", TasksBucket, err)
	}
	if s.idem, err = js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: IdemBucket, History: 1,
		Storage: jetstream.FileStorage, Replicas: cfg.Replicas, TTL: cfg.Retention}); err != nil {
		return nil, fmt.Errorf("kv bucket %s: %w", IdemBucket, err)
	}
	if s.modules, err = js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{Bucket: ModulesBucket,
		Storage: jetstream.FileStorage, Replicas: cfg.Replicas}); err != nil {
		return nil, fmt.Errorf("object store %s: %w", ModulesBucket, err)
	}
	if s.blobs, err = js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{Bucket: BlobsBucket,
		Storage: jetstream.FileStorage, Replicas: cfg.Replicas}); err != nil {
		return nil, fmt.Errorf("object store %s: %w", BlobsBucket, err)
	}
	if s.queue, err = js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: QueueStream, Subjects: []string{queueSubjects},
		Retention: jetstream.WorkQueuePolicy, Storage: jetstream.FileStorage, Replicas: cfg.Replicas,
		Duplicates: 2 * time.Minute}); err != nil {
		return nil, fmt.Errorf("stream %s: %w", QueueStream, err)
	}
	return s, nil
}

// JetStream is the handle the store was opened with (for health checks).
func (s *Store) JetStream() jetstream.JetStream { return s.js }

// Ping checks that JetStream answers.
func (s *Store) Ping(ctx context.Context) error {
	_, err := s.js.AccountInfo(ctx)
	return err
}
