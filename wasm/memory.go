package wasm

import (
	"fmt"
	"sync"

	"github.com/tetratelabs/wazero/experimental"
)

// memoryCap is an experimental.MemoryAllocator that enforces the linear-memory cap itself
// and remembers a refusal. wazero's own page limit is set to the wasm32 ceiling so every
// grow below 4 GiB reaches Reallocate: a grow refused here is a grow refused by our cap,
// and a later trap or non-zero exit can be reported as memory_limit with the exact size
// the guest asked for.
//
// The backing store is one slice whose capacity is the cap, reserved up front, so its
// address never moves (wazero's compiled code holds it). On Linux it is an anonymous
// mapping (memory_linux.go): the kernel hands out zero pages on first touch, so pages the
// guest never touches cost no RSS. A Go heap slice only has that property the first time:
// when a freed span is reused, Go clears it, touching every page of the cap (measured:
// seconds and gigabytes of RSS per run under a 4 GiB cap).
type memoryCap struct {
	limit uint64 // bytes; the most Reallocate will grant

	mu         sync.Mutex
	store      backing
	reserveErr error // set if Allocate could not reserve the store
	buf        []byte
	peak       uint64 // largest length granted
	refused    bool
	requested  uint64 // size of the first refused request
}

// newMemoryCap returns an allocator granting at most limit bytes per memory.
func newMemoryCap(limit uint64) *memoryCap {
	return &memoryCap{limit: limit}
}

// Allocate implements experimental.MemoryAllocator. max is the module's (or wazero's)
// maximum; the store never needs more than the smaller of it and our cap. The suggested
// capacity is ignored on purpose: the store is sized once, here.
func (m *memoryCap) Allocate(_, max uint64) experimental.LinearMemory {
	m.mu.Lock()
	defer m.mu.Unlock()
	store, err := reserve(min(m.limit, max))
	if err != nil {
		m.reserveErr = err // Reallocate will refuse; instantiate reports this error
		return m
	}
	m.store, m.buf = store, store.bytes()[:0]
	return m
}

// Reallocate implements experimental.LinearMemory: grant size bytes if the cap allows,
// else refuse (nil) and remember the request. wazero turns nil into memory.grow == -1.
func (m *memoryCap) Reallocate(size uint64) []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	if size > uint64(cap(m.buf)) {
		if !m.refused && m.reserveErr == nil {
			m.refused, m.requested = true, size
		}
		return nil
	}
	m.buf = m.buf[:size]
	m.peak = max(m.peak, size)
	return m.buf
}

// Free implements experimental.LinearMemory. wazero calls it from inside proc_exit, while
// guest frames are still on the stack, so the store is only released by release, once
// the guest call has returned.
func (m *memoryCap) Free() {}

// release returns the store to the OS. The guest must not run again afterwards.
func (m *memoryCap) release() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.buf = nil
	if m.store == nil {
		return nil
	}
	err := m.store.release()
	m.store = nil
	return err
}

// peakBytes is the largest linear-memory size granted (memory never shrinks, so it is
// also the size at the end).
func (m *memoryCap) peakBytes() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.peak
}

// reservationError is why the store could not be reserved, or nil.
func (m *memoryCap) reservationError() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.reserveErr
}

// refusal names the first refused size and the limit; ok is false if nothing was refused.
func (m *memoryCap) refusal() (message string, ok bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.refused {
		return "", false
	}
	return fmt.Sprintf("linear memory grow to %d bytes refused: limit %d bytes", m.requested, m.limit), true
}

// backing is the reserved store behind one linear memory.
type backing interface {
	bytes() []byte  // len == cap == the reserved size
	release() error // give it back; bytes() must not be used afterwards
}

// heap is a Go-heap store: the fallback where a mapping is not possible.
type heap []byte

func (h heap) bytes() []byte  { return h }
func (h heap) release() error { return nil }
