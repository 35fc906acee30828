package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/agentbox/agentbox/supervisor/task"
)

// Modules are kept per tenant: one tenant never sees, runs or deletes another's upload,
// and learns nothing of it (not even that the digest exists).
func moduleName(tenant, digest string) string { return tenant + "/" + digest }

// PutModule stores a module's bytes under its tenant and digest.
func (s *Store) PutModule(ctx context.Context, tenant, digest string, wasm []byte) (task.Module, error) {
	info, err := s.modules.PutBytes(ctx, moduleName(tenant, digest), wasm)
	if err != nil {
		return task.Module{}, fmt.Errorf("store module %s: %w", digest, err)
	}
	return moduleOf(info), nil
}

func moduleOf(info *jetstream.ObjectInfo) task.Module {
	tenant, digest, _ := strings.Cut(info.Name, "/")
	return task.Module{Digest: digest, Tenant: tenant, Bytes: info.Size, CreatedAt: info.ModTime}
}

// ModuleInfo describes a tenant's module.
func (s *Store) ModuleInfo(ctx context.Context, tenant, digest string) (task.Module, error) {
	info, err := s.modules.GetInfo(ctx, moduleName(tenant, digest))
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return task.Module{}, fmt.Errorf("module %s: %w", digest, ErrNotFound)
	}
	if err != nil {
		return task.Module{}, fmt.Errorf("module %s: %w", digest, err)
	}
	return moduleOf(info), nil
}

// ModuleBytes reads a tenant's module.
func (s *Store) ModuleBytes(ctx context.Context, tenant, digest string) ([]byte, error) {
	b, err := s.modules.GetBytes(ctx, moduleName(tenant, digest))
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil, fmt.Errorf("module %s: %w", digest, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read module %s: %w", digest, err)
	}
	return b, nil
}

// ListModules lists a tenant's modules.
func (s *Store) ListModules(ctx context.Context, tenant string) ([]task.Module, error) {
	infos, err := s.modules.List(ctx)
	if errors.Is(err, jetstream.ErrNoObjectsFound) {
		return []task.Module{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list modules: %w", err)
	}
	out := []task.Module{}
	for _, info := range infos {
		if m := moduleOf(info); m.Tenant == tenant && !info.Deleted {
			out = append(out, m)
		}
	}
	return out, nil
}

// DeleteModule removes a tenant's module.
func (s *Store) DeleteModule(ctx context.Context, tenant, digest string) error {
	err := s.modules.Delete(ctx, moduleName(tenant, digest))
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return fmt.Errorf("module %s: %w", digest, ErrNotFound)
	}
	return err
}

// Blobs: a task's stdin, and each attempt's full verdict (with output, up to 2× the
// output limit; too big for a KV record).
func stdinName(id string) string { return "stdin/" + id }

func verdictName(id string, attempt int) string { return "verdict/" + id + "/" + strconv.Itoa(attempt) }

// PutStdin stores a task's stdin.
func (s *Store) PutStdin(ctx context.Context, id string, b []byte) error {
	if _, err := s.blobs.PutBytes(ctx, stdinName(id), b); err != nil {
		return fmt.Errorf("store stdin of %s: %w", id, err)
	}
	return nil
}

// Stdin reads a task's stdin.
func (s *Store) Stdin(ctx context.Context, id string) ([]byte, error) {
	b, err := s.blobs.GetBytes(ctx, stdinName(id))
	if err != nil {
		return nil, fmt.Errorf("read stdin of %s: %w", id, err)
	}
	return b, nil
}

// PutVerdict stores an attempt's full verdict (JSON).
func (s *Store) PutVerdict(ctx context.Context, id string, attempt int, b []byte) error {
	if _, err := s.blobs.PutBytes(ctx, verdictName(id, attempt), b); err != nil {
		return fmt.Errorf("store verdict of %s attempt %d: %w", id, attempt, err)
	}
	return nil
}

// Verdict reads an attempt's full verdict.
func (s *Store) Verdict(ctx context.Context, id string, attempt int) ([]byte, error) {
	b, err := s.blobs.GetBytes(ctx, verdictName(id, attempt))
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil, fmt.Errorf("verdict of %s attempt %d: %w", id, attempt, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read verdict of %s attempt %d: %w", id, attempt, err)
	}
	return b, nil
}

// DeleteBlobs removes a task's stdin and verdicts (retention); missing ones are fine.
func (s *Store) DeleteBlobs(ctx context.Context, id string, attempts int) {
	s.blobs.Delete(ctx, stdinName(id))
	for n := 1; n <= attempts; n++ {
		s.blobs.Delete(ctx, verdictName(id, n))
	}
}
