package sandbox

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// cache keeps wazero's compiled code per module digest. wazero's cache holds raw machine
// code, so any writer could poison any entry it can reach; here each entry is written only
// by a sandboxed compile of that very digest, into a scratch directory owned by that task's
// uid, and then handed to root and made read-only before any run mounts it (read-only).
type cache struct{ root string }

func openCache(root string) (*cache, error) {
	if err := os.MkdirAll(filepath.Join(root, "scratch"), 0o711); err != nil {
		return nil, fmt.Errorf("create compile cache %s: %w", root, err)
	}
	// Scratch left by a crashed run is never trusted: start clean.
	entries, _ := os.ReadDir(filepath.Join(root, "scratch"))
	for _, e := range entries {
		os.RemoveAll(filepath.Join(root, "scratch", e.Name()))
	}
	return &cache{root: root}, nil
}

// entry is the directory of a digest's committed code.
func (c *cache) entry(digest string) string { return filepath.Join(c.root, "sha256-"+digest) }

func (c *cache) has(digest string) bool {
	st, err := os.Stat(c.entry(digest))
	return err == nil && st.IsDir()
}

// scratchDir is an entry being written by one sandboxed compile.
type scratchDir struct {
	path, final string
}

func (c *cache) scratch(digest string) (*scratchDir, error) {
	dir, err := os.MkdirTemp(filepath.Join(c.root, "scratch"), digest[:16]+"-")
	if err != nil {
		return nil, fmt.Errorf("create scratch: %w", err)
	}
	return &scratchDir{path: dir, final: c.entry(digest)}, nil
}

// chown gives the scratch directory to the compiling task's host uid, the only writer.
func (s *scratchDir) chown(uid uint32) error {
	return os.Chown(s.path, int(uid), int(uid))
}

// commit hands the entry to root, makes it read-only for everyone, and renames it into
// place. A concurrent compile of the same digest may have won the rename: then ours goes.
func (s *scratchDir) commit() error {
	err := filepath.WalkDir(s.path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type()&fs.ModeSymlink != 0 || !(d.IsDir() || d.Type().IsRegular()) {
			return fmt.Errorf("unexpected file %s in compiled cache", p)
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
		s.discard()
		return fmt.Errorf("seal cache entry: %w", err)
	}
	if err := os.Rename(s.path, s.final); err != nil {
		s.discard()
		if _, statErr := os.Stat(s.final); statErr == nil {
			return nil
		}
		return fmt.Errorf("commit cache entry: %w", err)
	}
	return nil
}

func (s *scratchDir) discard() {
	filepath.WalkDir(s.path, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			os.Chmod(p, 0o755)
		}
		return nil
	})
	os.RemoveAll(s.path)
}
