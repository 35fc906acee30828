package sandbox

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// slots hands out host uid/gid slots, one per running task, distinct across every agentbox
// process on the host: a slot is held by an flock on a file in the state directory, which
// the kernel releases when its holder dies, so a crashed supervisor leaks nothing.
type slots struct {
	dir   string
	base  uint32
	count int
}

// slot is one claimed host id; release it when the task's processes are gone.
type slot struct {
	n    int
	uid  uint32
	lock *os.File
}

func newSlots(dir string, base uint32, count int) (*slots, error) {
	if count <= 0 || uint64(base)+uint64(count) > 1<<32-2 {
		return nil, fmt.Errorf("uid range base %d count %d does not fit in 32 bits", base, count)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create slot dir: %w", err)
	}
	return &slots{dir: dir, base: base, count: count}, nil
}

// acquire claims a free slot, starting at a random one so concurrent supervisors rarely
// contend.
func (s *slots) acquire() (*slot, error) {
	start := rand.IntN(s.count)
	for i := range s.count {
		n := (start + i) % s.count
		f, err := os.OpenFile(filepath.Join(s.dir, fmt.Sprintf("slot-%d", n)), os.O_CREATE|os.O_RDWR, 0o600)
		if err != nil {
			return nil, fmt.Errorf("open slot %d: %w", n, err)
		}
		if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
			f.Close()
			continue
		}
		return &slot{n: n, uid: s.base + uint32(n), lock: f}, nil
	}
	return nil, fmt.Errorf("%w: all %d slots from uid %d are in use", ErrNoSlot, s.count, s.base)
}

func (sl *slot) release() { sl.lock.Close() }
