package sandbox

import (
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// slots hands out host uid/gid slots, one per running task, distinct across every agentbox
// process on the host: a uid is held by an flock on a file named for the uid itself in one
// fixed directory (SlotLockDir), which the kernel releases when its holder dies, so a
// crashed supervisor leaks nothing, and two supervisors with different uid ranges still
// never share an id.
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

// acquire claims the lowest free slot. Lowest first, so the lock files in use stay as few
// as the most tasks ever run at once, and are reused rather than piled up; a taken lock
// costs one non-blocking flock to skip.
func (s *slots) acquire() (*slot, error) {
	for n := range s.count {
		uid := s.base + uint32(n)
		f, err := os.OpenFile(filepath.Join(s.dir, fmt.Sprintf("uid-%d", uid)), os.O_CREATE|os.O_RDWR|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if err != nil {
			return nil, fmt.Errorf("open uid lock %d: %w", uid, err)
		}
		if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
			f.Close()
			continue
		}
		return &slot{n: n, uid: uid, lock: f}, nil
	}
	return nil, fmt.Errorf("%w: all %d slots from uid %d are in use", ErrNoSlot, s.count, s.base)
}

func (sl *slot) release() { sl.lock.Close() }
