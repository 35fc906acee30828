package sandbox

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"sort"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// cache keeps wazero's compiled code per module digest, shared by every agentbox process on
// the host. wazero's cache holds raw machine code, so any writer could poison any entry it
// can reach: each entry is written only by a sandboxed compile of that very digest, into a
// scratch directory owned by that task's uid, and then handed to root and made read-only
// before any run mounts it (read-only).
//
// Layout under root, one folder per engine (wazero's version and the platform: a binary
// built with another wazero must never mount code it did not compile, and wazero looks for
// its code in a folder of that very name):
//
//	<engine>/sha256-<digest>/   committed entries (root-owned, read-only); mtime is the last use
//	<engine>/scratch/<digest>/  the one compile of <digest> in progress
//	<engine>/locks/<digest>     the digest's lock: exclusive while compiling or evicting,
//	                            shared while a run has the entry mounted
//
// The lock is an flock, which the kernel drops with its holder: scratch/<digest> found by
// whoever holds the exclusive lock is a dead compile's, never a live one's, and goes.
type cache struct {
	root     string // as configured
	base     string // root/<engine>
	maxBytes uint64
}

const (
	cacheScratch = "scratch"
	cacheLocks   = "locks"
	entryPrefix  = "sha256-"
	enginePrefix = "wazero-"
)

// openCache makes or checks the cache directory. It refuses one that others could write
// (the entries are machine code that runs as the guest's), and sweeps scratch that dead
// compiles left, leaving every live compile alone.
func openCache(root string, maxBytes uint64) (*cache, error) {
	return openEngineCache(root, engine(), maxBytes)
}

func openEngineCache(root, engine string, maxBytes uint64) (*cache, error) {
	base := filepath.Join(root, engine)
	for _, d := range []string{root, base, filepath.Join(base, cacheScratch), filepath.Join(base, cacheLocks)} {
		if err := os.MkdirAll(d, 0o711); err != nil {
			return nil, fmt.Errorf("create %s: %w", d, err)
		}
		if err := checkPrivate(d); err != nil {
			return nil, err
		}
	}
	if err := unix.Access(root, unix.W_OK); err != nil {
		return nil, fmt.Errorf("%s is not writable: %w", root, err)
	}
	c := &cache{root: root, base: base, maxBytes: maxBytes}
	c.sweepScratch()
	return c, nil
}

// engine names the code generator of this binary as wazero names its cache folder:
// "wazero-<version>-<arch>-<os>", the version as wazero's own internal/version finds it
// ("dev" in test binaries, which then never share entries with a release).
func engine() string {
	v := ""
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, dep := range info.Deps {
			if dep.Path == "github.com/tetratelabs/wazero" {
				v = dep.Version
			}
		}
	}
	if v == "" || v == "(devel)" {
		v = "dev"
	}
	return fmt.Sprintf("%s%s-%s-%s", enginePrefix, v, runtime.GOARCH, runtime.GOOS)
}

// checkPrivate refuses a directory that is not root's alone to change.
func checkPrivate(dir string) error {
	st, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	sys, _ := st.Sys().(*syscall.Stat_t)
	switch {
	case !st.IsDir():
		return fmt.Errorf("%s is not a directory", dir)
	case sys == nil || sys.Uid != 0:
		return fmt.Errorf("%s is not owned by root; the cache holds machine code, so only root may write it", dir)
	case st.Mode().Perm()&0o022 != 0:
		return fmt.Errorf("%s is writable by group or others (mode %o); the cache holds machine code, so only root may write it", dir, st.Mode().Perm())
	}
	return nil
}

// sweepScratch removes the scratch of every compile whose owner is gone.
func (c *cache) sweepScratch() {
	entries, _ := os.ReadDir(filepath.Join(c.base, cacheScratch))
	for _, e := range entries {
		l, err := c.tryLock(e.Name(), unix.LOCK_EX)
		if err != nil {
			continue // a live compile, or not a digest of ours
		}
		removeTree(filepath.Join(c.base, cacheScratch, e.Name()))
		l.Close()
	}
}

func (c *cache) entry(digest string) string { return filepath.Join(c.base, entryPrefix+digest) }

func (c *cache) has(digest string) bool {
	st, err := os.Stat(c.entry(digest))
	return err == nil && st.IsDir()
}

// compiledCode is a directory of compiled code ready to mount read-only; release it once
// the run that mounts it is over.
type compiledCode struct {
	dir     string
	release func()
}

// fillFunc runs the sandboxed compile into scratch; ok false means r is the final verdict.
type fillFunc func(ctx context.Context, scratch *scratchDir) (r Result, ok bool)

// acquire returns the digest's committed entry, held shared until release, compiling it
// with fill first if no process has. Of many concurrent first runs of one digest, one
// compiles and the others wait for it. err is a problem of the cache itself (the caller
// then compiles privately); ok false with res is the compile's final verdict.
func (c *cache) acquire(ctx context.Context, digest string, compileTimeout time.Duration, fill fillFunc) (code *compiledCode, res Result, ok bool, err error) {
	// A waiter gives up on a compile that outlives its own budget by far: the holder is
	// stuck, and a private compile is better than no verdict.
	waitUntil := time.Now().Add(compileTimeout + 30*time.Second)
	for attempt := 0; attempt < 3; attempt++ {
		l, err := c.lock(ctx, digest, unix.LOCK_SH, waitUntil)
		if err != nil {
			return nil, Result{}, false, err
		}
		if c.has(digest) {
			return c.hold(digest, l), Result{}, true, nil
		}
		l.Close()
		if l, err = c.lock(ctx, digest, unix.LOCK_EX, waitUntil); err != nil {
			return nil, Result{}, false, err
		}
		if !c.has(digest) {
			if res, ok, err := c.fill(ctx, digest, fill); err != nil || !ok {
				l.Close()
				return nil, res, false, err
			}
		}
		// Exclusive to shared is not atomic (flock(2)): an eviction may slip in between,
		// so look again once shared.
		if err := unix.Flock(int(l.Fd()), unix.LOCK_SH); err != nil {
			l.Close()
			return nil, Result{}, false, fmt.Errorf("lock %s shared: %w", digest, err)
		}
		if c.has(digest) {
			c.evict(digest)
			return c.hold(digest, l), Result{}, true, nil
		}
		l.Close()
	}
	return nil, Result{}, false, fmt.Errorf("entry %s was evicted three times while being acquired", digest)
}

// fill compiles digest into its scratch directory and commits it, under the exclusive lock.
func (c *cache) fill(ctx context.Context, digest string, fill fillFunc) (Result, bool, error) {
	s := &scratchDir{path: filepath.Join(c.base, cacheScratch, digest), final: c.entry(digest)}
	removeTree(s.path) // a dead compile's: we hold the lock
	if err := os.Mkdir(s.path, 0o700); err != nil {
		return Result{}, false, fmt.Errorf("create scratch: %w", err)
	}
	res, ok := fill(ctx, s)
	if !ok {
		s.discard()
		return res, false, nil
	}
	if err := s.commit(); err != nil {
		return Result{}, false, err
	}
	return res, true, nil
}

// held returns the digest's committed entry held shared until release, or nil when there
// is none, or a compile or an eviction holds its lock now: hot children are warmed only
// from code already in the cache, and never wait for it.
func (c *cache) held(digest string) *compiledCode {
	l, err := c.tryLock(digest, unix.LOCK_SH)
	if err != nil {
		return nil
	}
	if !c.has(digest) {
		l.Close()
		return nil
	}
	return c.hold(digest, l)
}

// hold marks the entry used now (for eviction) and keeps its shared lock until release.
func (c *cache) hold(digest string, l *os.File) *compiledCode {
	now := time.Now()
	os.Chtimes(c.entry(digest), now, now)
	return &compiledCode{dir: c.entry(digest), release: func() { l.Close() }}
}

// lock takes the digest's lock in mode how, polling so that a cancel or the wait bound
// stops the wait (flock itself cannot be interrupted by a context).
func (c *cache) lock(ctx context.Context, digest string, how int, until time.Time) (*os.File, error) {
	for delay := time.Millisecond; ; delay = min(2*delay, 50*time.Millisecond) {
		l, err := c.tryLock(digest, how)
		if err == nil {
			return l, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) {
			return nil, err
		}
		if time.Now().After(until) {
			return nil, fmt.Errorf("waited until %s for another compile of %s", until.Format(time.TimeOnly), digest)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for the compile of %s: %w", digest, context.Cause(ctx))
		case <-time.After(delay):
		}
	}
}

// tryLock takes the lock without waiting. A lock file removed by prune between our open
// and our flock is not the lock any more: then we try the new file.
func (c *cache) tryLock(digest string, how int) (*os.File, error) {
	if !isDigest(digest) {
		return nil, fmt.Errorf("%q is not a sha256 digest", digest)
	}
	path := filepath.Join(c.base, cacheLocks, digest)
	for {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR|syscall.O_NOFOLLOW, 0o600)
		if err != nil {
			return nil, fmt.Errorf("open lock: %w", err)
		}
		if err := unix.Flock(int(f.Fd()), how|unix.LOCK_NB); err != nil {
			f.Close()
			return nil, err
		}
		var held, now unix.Stat_t
		if unix.Fstat(int(f.Fd()), &held) == nil && unix.Stat(path, &now) == nil && held.Ino == now.Ino {
			return f, nil
		}
		f.Close()
	}
}

func isDigest(s string) bool {
	if len(s) != 64 {
		return false
	}
	return strings.Trim(s, "0123456789abcdef") == ""
}

// evict removes least recently used entries until the cache fits its bound again, keeping
// keep and every entry a run holds.
func (c *cache) evict(keep string) {
	entries, err := listEntries(c.root)
	if err != nil {
		return
	}
	// The bound is for the whole cache: entries of other engines (an older agentbox) count,
	// and are evicted first when least recently used.
	var total uint64
	for _, e := range entries {
		total += e.Bytes
	}
	for _, e := range entries { // oldest first
		if total <= c.maxBytes {
			return
		}
		if e.Digest == keep && e.Engine == filepath.Base(c.base) {
			continue
		}
		if removeEntry(c.root, e) {
			total -= e.Bytes
		}
	}
}

// removeEntry deletes one entry and its lock file unless a run or a compile holds it.
func removeEntry(root string, e CacheEntry) bool {
	c := &cache{root: root, base: filepath.Join(root, e.Engine)}
	l, err := c.tryLock(e.Digest, unix.LOCK_EX)
	if err != nil {
		return false
	}
	defer l.Close()
	removeTree(c.entry(e.Digest))
	os.Remove(filepath.Join(c.base, cacheLocks, e.Digest))
	return true
}

// ListCache lists the entries of the cache at dir, least recently used first.
func ListCache(dir string) ([]CacheEntry, error) { return listEntries(dir) }

// PruneCache removes least recently used entries of the cache at dir until it holds at
// most maxBytes (0: remove every entry), skipping entries in use. It returns what it removed.
func PruneCache(dir string, maxBytes uint64) ([]CacheEntry, error) {
	if _, err := openCache(dir, maxBytes); err != nil {
		return nil, err
	}
	entries, err := listEntries(dir)
	if err != nil {
		return nil, err
	}
	var total uint64
	for _, e := range entries {
		total += e.Bytes
	}
	var removed []CacheEntry
	for _, e := range entries {
		if total <= maxBytes && maxBytes > 0 {
			break
		}
		if removeEntry(dir, e) {
			total -= e.Bytes
			removed = append(removed, e)
		}
	}
	return removed, nil
}

// listEntries lists the committed entries of every engine under root, oldest use first.
func listEntries(root string) ([]CacheEntry, error) {
	engines, err := os.ReadDir(root)
	if err != nil {
		return nil, fmt.Errorf("read cache %s: %w", root, err)
	}
	var out []CacheEntry
	// Engine "" is root itself: where agentbox kept entries before it had engine folders.
	names := []string{""}
	for _, eng := range engines {
		if eng.IsDir() && strings.HasPrefix(eng.Name(), enginePrefix) {
			names = append(names, eng.Name())
		}
	}
	for _, eng := range names {
		dirents, err := os.ReadDir(filepath.Join(root, eng))
		if err != nil {
			return nil, fmt.Errorf("read cache %s: %w", root, err)
		}
		for _, d := range dirents {
			digest, ok := strings.CutPrefix(d.Name(), entryPrefix)
			if !ok || !d.IsDir() || !isDigest(digest) {
				continue
			}
			info, err := d.Info()
			if err != nil {
				continue
			}
			out = append(out, CacheEntry{Digest: digest, Engine: eng, LastUsed: info.ModTime(),
				Bytes: treeSize(filepath.Join(root, eng, d.Name()))})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].LastUsed.Before(out[j].LastUsed) })
	return out, nil
}

func treeSize(dir string) uint64 {
	var n uint64
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if info, err := d.Info(); err == nil {
				n += uint64(info.Size())
			}
		}
		return nil
	})
	return n
}

// scratchDir is compiled code being written by one sandboxed compile.
type scratchDir struct {
	path, final string // final is "" for a private compile
}

// chown gives the scratch directory to the compiling task's host uid, the only writer.
func (s *scratchDir) chown(uid uint32) error {
	return os.Chown(s.path, int(uid), int(uid))
}

// seal hands the compiled code to root and makes it read-only for everyone. Anything but
// plain files and directories is refused: the compile was untrusted.
func (s *scratchDir) seal() error {
	err := filepath.WalkDir(s.path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type()&fs.ModeSymlink != 0 || !(d.IsDir() || d.Type().IsRegular()) {
			return fmt.Errorf("unexpected file %s in compiled code", p)
		}
		mode := os.FileMode(0o444)
		if d.IsDir() {
			mode = 0o555
		}
		if err := os.Lchown(p, 0, 0); err != nil {
			return err
		}
		return os.Chmod(p, mode)
	})
	if err != nil {
		return fmt.Errorf("seal compiled code: %w", err)
	}
	return nil
}

// commit seals the entry and renames it into place (under the digest's exclusive lock, so
// nobody else is committing it).
func (s *scratchDir) commit() error {
	if err := s.seal(); err != nil {
		s.discard()
		return err
	}
	if err := os.Rename(s.path, s.final); err != nil {
		s.discard()
		return fmt.Errorf("commit cache entry: %w", err)
	}
	return nil
}

func (s *scratchDir) discard() { removeTree(s.path) }

// removeTree removes dir, making read-only directories in it writable first.
func removeTree(dir string) {
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			os.Chmod(p, 0o755)
		}
		return nil
	})
	os.RemoveAll(dir)
}
