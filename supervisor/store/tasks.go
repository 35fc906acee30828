package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/agentbox/agentbox/supervisor/task"
)

// CreateTask writes a new record; it fails if the id exists.
func (s *Store) CreateTask(ctx context.Context, t *task.Task) error {
	b, err := json.Marshal(t)
	if err != nil {
		return fmt.Errorf("encode task %s: %w", t.ID, err)
	}
	rev, err := s.tasks.Create(ctx, t.ID, b)
	if err != nil {
		return fmt.Errorf("create task %s: %w", t.ID, err)
	}
	t.Revision = rev
	return nil
}

// GetTask reads a record with its revision.
func (s *Store) GetTask(ctx context.Context, id string) (task.Task, error) {
	e, err := s.tasks.Get(ctx, id)
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		return task.Task{}, fmt.Errorf("task %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return task.Task{}, fmt.Errorf("read task %s: %w", id, err)
	}
	return decodeTask(e)
}

func decodeTask(e jetstream.KeyValueEntry) (task.Task, error) {
	var t task.Task
	if err := json.Unmarshal(e.Value(), &t); err != nil {
		return t, fmt.Errorf("decode task %s at revision %d: %w", e.Key(), e.Revision(), err)
	}
	t.Revision = e.Revision()
	return t, nil
}

// UpdateTask writes t back if the record is still at t.Revision (ErrConflict otherwise),
// and moves t.Revision on.
func (s *Store) UpdateTask(ctx context.Context, t *task.Task) error {
	b, err := json.Marshal(t)
	if err != nil {
		return fmt.Errorf("encode task %s: %w", t.ID, err)
	}
	rev, err := s.tasks.Update(ctx, t.ID, b, t.Revision)
	if errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyExists) {
		return fmt.Errorf("task %s at revision %d: %w", t.ID, t.Revision, ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("update task %s: %w", t.ID, err)
	}
	t.Revision = rev
	return nil
}

// Mutate applies move to the current record and writes it with a compare-and-set,
// reading again and reapplying when another writer won, until move refuses (its error is
// returned as is) or the write lands. It returns the record as written.
func (s *Store) Mutate(ctx context.Context, id string, move func(*task.Task) error) (task.Task, error) {
	for {
		t, err := s.GetTask(ctx, id)
		if err != nil {
			return t, err
		}
		if err := move(&t); err != nil {
			return t, err
		}
		err = s.UpdateTask(ctx, &t)
		if !errors.Is(err, ErrConflict) {
			return t, err
		}
		if ctx.Err() != nil {
			return t, ctx.Err()
		}
	}
}

// DeleteTask removes a record and its history (retention).
func (s *Store) DeleteTask(ctx context.Context, id string) error {
	if err := s.tasks.Purge(ctx, id); err != nil {
		return fmt.Errorf("purge task %s: %w", id, err)
	}
	return nil
}

// Change is one update of the task records as a watch sees it. Deleted is set (and Task
// holds only the id) when a record was removed. A Change with Ready set and no task marks
// the end of the initial values.
type Change struct {
	Task    task.Task
	Deleted bool
	Ready   bool
}

// WatchTasks streams every record, then every change, until ctx ends. The channel closes
// when the watch ends; a decode error on one record is reported through bad and skipped.
func (s *Store) WatchTasks(ctx context.Context, bad func(error)) (<-chan Change, error) {
	w, err := s.tasks.WatchAll(ctx)
	if err != nil {
		return nil, fmt.Errorf("watch %s: %w", TasksBucket, err)
	}
	out := make(chan Change, 256)
	go func() {
		defer close(out)
		defer w.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case e, ok := <-w.Updates():
				if !ok {
					return
				}
				c, ok := change(e, bad)
				if !ok {
					continue
				}
				select {
				case out <- c:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out, nil
}

func change(e jetstream.KeyValueEntry, bad func(error)) (Change, bool) {
	if e == nil {
		return Change{Ready: true}, true
	}
	if e.Operation() != jetstream.KeyValuePut {
		return Change{Task: task.Task{ID: e.Key()}, Deleted: true}, true
	}
	t, err := decodeTask(e)
	if err != nil {
		bad(err)
		return Change{}, false
	}
	return Change{Task: t}, true
}

// ClaimIdempotencyKey records that key (already hashed with its tenant) names task id. If
// the key is taken, it returns the id that holds it and false.
func (s *Store) ClaimIdempotencyKey(ctx context.Context, key, id string) (holder string, claimed bool, err error) {
	if _, err := s.idem.Create(ctx, key, []byte(id)); err == nil {
		return id, true, nil
	} else if !errors.Is(err, jetstream.ErrKeyExists) {
		return "", false, fmt.Errorf("claim idempotency key: %w", err)
	}
	e, err := s.idem.Get(ctx, key)
	if err != nil {
		return "", false, fmt.Errorf("read idempotency key: %w", err)
	}
	return string(e.Value()), false, nil
}

// ReplaceIdempotencyKey moves key to id: its holder was never accepted (a submit that
// died between the claim and the record).
func (s *Store) ReplaceIdempotencyKey(ctx context.Context, key, id string) error {
	_, err := s.idem.Put(ctx, key, []byte(id))
	return err
}
