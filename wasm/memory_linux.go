package wasm

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// mapping is an anonymous private mapping: zero-filled on first touch, no RSS before, no
// swap reservation (MAP_NORESERVE; the cgroup memory limit is the real bound).
type mapping []byte

// reserve maps size bytes. There is no heap fallback on failure: a Go allocation of
// gigabytes that fails kills the process, while a failed mapping is just an error.
func reserve(size uint64) (backing, error) {
	if size == 0 { // mmap refuses length 0; a memory whose maximum is 0 pages is legal
		return heap(nil), nil
	}
	b, err := unix.Mmap(-1, 0, int(size), unix.PROT_READ|unix.PROT_WRITE,
		unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_NORESERVE)
	if err != nil {
		return nil, fmt.Errorf("%w: mapping %d bytes: %w", ErrReserve, size, err)
	}
	return mapping(b), nil
}

func (m mapping) bytes() []byte { return m }

func (m mapping) release() error {
	if err := unix.Munmap(m); err != nil {
		return fmt.Errorf("unmapping %d bytes of linear memory: %w", len(m), err)
	}
	return nil
}
