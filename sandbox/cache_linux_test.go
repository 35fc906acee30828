package sandbox

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/agentbox/agentbox/internal/privtest"
	"github.com/agentbox/agentbox/outcome"
)

// cacheModules are modules that all end ok with no input: a mix of tiny WAT modules and
// the 2.5 MB Go example, whose compile takes long enough for runs to overlap it.
var cacheModules = []string{
	"../testdata/modules/hello.wasm",
	"../testdata/modules/args.wasm",
	"../testdata/modules/env.wasm",
	"../examples/hello/hello.wasm",
}

func readModule(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read module: %v", err)
	}
	return b
}

func digestOf(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// waitFor polls cond until it holds, failing the test after a deadline generous enough for
// a machine many times slower than this one.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestConcurrentColdCompiles starts 40 first runs of the same and of different modules on
// one empty cache: half at once, half staggered (each starting once a compile is under
// way), from several supervisors. Every one must be ok, with no warning, and the cache must
// end with one sealed entry per module and no scratch left.
func TestConcurrentColdCompiles(t *testing.T) {
	privtest.RequireRoot(t)
	cacheDir := filepath.Join(t.TempDir(), "cache")
	sandboxes := []*Sandbox{newTestSandbox(t, cacheDir), newTestSandbox(t, cacheDir), newTestSandbox(t, cacheDir)}
	modules := make([][]byte, len(cacheModules))
	for i, p := range cacheModules {
		modules[i] = readModule(t, p)
	}
	goDigest := digestOf(modules[len(modules)-1])
	var wg sync.WaitGroup
	results := make([]Result, 40)
	run := func(i int) {
		defer wg.Done()
		sb := sandboxes[i%len(sandboxes)]
		res, err := sb.Run(context.Background(), Spec{Module: modules[i%len(modules)], Limits: Limits{Timeout: 5 * time.Minute}})
		if err != nil {
			t.Errorf("run %d: %v", i, err)
		}
		results[i] = res
	}
	wg.Add(40)
	for i := range 20 {
		go run(i)
	}
	// The second half starts while the Go module's compile is in progress: its scratch
	// directory exists, or it has already been committed.
	waitFor(t, "the Go module's compile to start", func() bool {
		_, errScratch := os.Stat(filepath.Join(cacheDir, engine(), cacheScratch, goDigest))
		_, errEntry := os.Stat(filepath.Join(cacheDir, engine(), entryPrefix+goDigest))
		return errScratch == nil || errEntry == nil
	})
	for i := 20; i < 40; i++ {
		go run(i)
	}
	wg.Wait()
	for i, r := range results {
		if r.Outcome != outcome.OK || len(r.Warnings) > 0 {
			t.Errorf("run %d (%s): %s %q, warnings %q", i, cacheModules[i%len(modules)], r.Outcome, r.Message, r.Warnings)
		}
	}
	entries, err := ListCache(cacheDir)
	if err != nil || len(entries) != len(modules) {
		t.Fatalf("cache holds %d entries (%v), want %d", len(entries), err, len(modules))
	}
	if left, _ := os.ReadDir(filepath.Join(cacheDir, engine(), cacheScratch)); len(left) != 0 {
		t.Fatalf("scratch left behind: %v", left)
	}
}

// compileHelperEnv makes this test binary act as a supervisor that fills the cache for
// one module ("CACHEDIR,MODULE"), so that TestKilledCompile can SIGKILL it midway. The
// sandbox children it spawns get a fresh environment, so they never see it.
const compileHelperEnv = "AGENTBOX_TEST_COMPILE_HELPER"

func init() {
	if spec := os.Getenv(compileHelperEnv); spec != "" {
		os.Exit(compileHelper(spec))
	}
}

func compileHelper(spec string) int {
	cacheDir, module, _ := strings.Cut(spec, ",")
	b, err := os.ReadFile(module)
	if err != nil {
		return 1
	}
	sb, err := New(Config{CacheDir: cacheDir})
	if err != nil {
		return 1
	}
	sb.Run(context.Background(), Spec{Module: b})
	return 0
}

// TestKilledCompile kills compiles midway, two ways: the caller cancels (the supervisor
// discards the scratch), and the supervisor process itself is SIGKILLed (its scratch and
// lock are left for the kernel and the next supervisor). The next runs must succeed and
// leave no scratch.
func TestKilledCompile(t *testing.T) {
	privtest.RequireRoot(t)
	cacheDir := filepath.Join(t.TempDir(), "cache")
	module := cacheModules[len(cacheModules)-1]
	bytes := readModule(t, module)
	scratch := filepath.Join(cacheDir, engine(), cacheScratch, digestOf(bytes))
	started := func() bool { _, err := os.Stat(scratch); return err == nil }

	t.Run("cancelled", func(t *testing.T) {
		sb := newTestSandbox(t, cacheDir)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan Result, 1)
		go func() { r, _ := sb.Run(ctx, Spec{Module: bytes}); done <- r }()
		waitFor(t, "the compile to start", started)
		cancel()
		if r := <-done; r.Outcome != outcome.Cancelled {
			t.Fatalf("cancelled compile: %s %q, want cancelled", r.Outcome, r.Message)
		}
		if started() {
			t.Fatal("a cancelled compile left its scratch")
		}
	})
	t.Run("supervisor killed", func(t *testing.T) {
		helper := exec.Command(os.Args[0])
		helper.Env = append(os.Environ(), compileHelperEnv+"="+cacheDir+","+module)
		if err := helper.Start(); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the helper's compile to start", started)
		helper.Process.Signal(syscall.SIGKILL)
		helper.Wait()
		sb := newTestSandbox(t, cacheDir)
		for i := range 2 { // the first compiles again, the second uses the entry
			r, err := sb.Run(context.Background(), Spec{Module: bytes})
			if err != nil || r.Outcome != outcome.OK || len(r.Warnings) > 0 {
				t.Fatalf("run %d after a killed compile: %s %q %v warnings %q", i, r.Outcome, r.Message, err, r.Warnings)
			}
			if (r.Usage.CompileMS > 0) != (i == 0) {
				t.Fatalf("run %d: compile_ms %d: want a compile only on the first run", i, r.Usage.CompileMS)
			}
		}
		if started() {
			t.Fatal("the dead compile's scratch is still there")
		}
	})
}

// TestCompileHasItsOwnBudget runs the Go example under a guest memory limit that its
// compile alone would not fit (wazero's compiler needs more): cold and warm, with and
// without the cache, the verdict is the same ok, and only a compile reports compile_ms.
func TestCompileHasItsOwnBudget(t *testing.T) {
	privtest.RequireRoot(t)
	module := readModule(t, cacheModules[len(cacheModules)-1])
	lim := Limits{MemoryBytes: 48 << 20, Timeout: 5 * time.Minute}
	cached := newTestSandbox(t, filepath.Join(t.TempDir(), "cache"))
	private := newTestSandbox(t, "")
	runs := []struct {
		name        string
		sb          *Sandbox
		wantCompile bool
	}{
		{"cold cache", cached, true},
		{"warm cache", cached, false},
		{"no cache", private, true},
	}
	for _, r := range runs {
		res, err := r.sb.Run(context.Background(), Spec{Module: module, Limits: lim})
		if err != nil || res.Outcome != outcome.OK {
			t.Fatalf("%s: %s %q %v", r.name, res.Outcome, res.Message, err)
		}
		if (res.Usage.CompileMS > 0) != r.wantCompile {
			t.Fatalf("%s: compile_ms %d, want a compile: %t", r.name, res.Usage.CompileMS, r.wantCompile)
		}
	}
}

// TestCompileBudgetExceeded gives the compile less memory than it needs: the module is
// invalid_module with the compile limit named, never the guest's memory_limit.
func TestCompileBudgetExceeded(t *testing.T) {
	privtest.RequireRoot(t)
	sb, err := New(Config{CacheDir: filepath.Join(t.TempDir(), "cache"), Compile: CompileLimits{MemoryBytes: minMemory}})
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	module := readModule(t, cacheModules[len(cacheModules)-1])
	res, err := sb.Run(context.Background(), Spec{Module: module})
	if err != nil || res.Outcome != outcome.InvalidModule || !strings.Contains(res.Message, "compile memory limit of 32Mi") {
		t.Fatalf("compile over budget: %s %q %v; want invalid_module naming the compile memory limit", res.Outcome, res.Message, err)
	}
}

// TestUnusableCache: a cache directory others could write is refused (it holds machine
// code), and the task still runs, privately compiled, with a warning saying why.
func TestUnusableCache(t *testing.T) {
	privtest.RequireRoot(t)
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	sb := newTestSandbox(t, dir)
	res, err := sb.Run(context.Background(), Spec{Module: readModule(t, cacheModules[0])})
	if err != nil || res.Outcome != outcome.OK {
		t.Fatalf("run with an unusable cache: %s %q %v", res.Outcome, res.Message, err)
	}
	if len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "writable by group or others") {
		t.Fatalf("warnings %q: want one naming the unsafe cache mode", res.Warnings)
	}
}

// TestCacheEviction bounds the cache to one byte: each new entry evicts the others, an
// entry in use is kept, and PruneCache empties what is left.
func TestCacheEviction(t *testing.T) {
	privtest.RequireRoot(t)
	dir := filepath.Join(t.TempDir(), "cache")
	sb, err := New(Config{CacheDir: dir, CacheMaxBytes: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	for _, p := range cacheModules[:3] {
		m := readModule(t, p)
		if res, err := sb.Run(context.Background(), Spec{Module: m}); err != nil || res.Outcome != outcome.OK {
			t.Fatalf("%s: %s %q %v", p, res.Outcome, res.Message, err)
		}
		entries, _ := ListCache(dir)
		if len(entries) != 1 || entries[0].Digest != digestOf(m) {
			t.Fatalf("after %s the cache holds %+v: want only its entry", p, entries)
		}
	}
	removed, err := PruneCache(dir, 0)
	if err != nil || len(removed) != 1 {
		t.Fatalf("prune: removed %+v, %v; want the one entry", removed, err)
	}
	if entries, _ := ListCache(dir); len(entries) != 0 {
		t.Fatalf("after prune: %+v", entries)
	}
}

// TestSlotsReuseLocks: sequential tasks reuse one lock file; concurrent ones get distinct
// uids, one file each.
func TestSlotsReuseLocks(t *testing.T) {
	dir := t.TempDir()
	s, err := newSlots(dir, 2_000_000_000, 16)
	if err != nil {
		t.Fatal(err)
	}
	for range 100 {
		sl, err := s.acquire()
		if err != nil {
			t.Fatal(err)
		}
		sl.release()
	}
	if files, _ := os.ReadDir(dir); len(files) != 1 {
		t.Fatalf("%d lock files after 100 sequential tasks, want 1", len(files))
	}
	held := map[uint32]bool{}
	for range 3 {
		sl, err := s.acquire()
		if err != nil {
			t.Fatal(err)
		}
		defer sl.release()
		if held[sl.uid] {
			t.Fatalf("uid %d handed out twice", sl.uid)
		}
		held[sl.uid] = true
	}
	// A second supervisor over an overlapping range sees the same locks.
	other, _ := newSlots(dir, 2_000_000_001, 16)
	sl, err := other.acquire()
	if err != nil {
		t.Fatal(err)
	}
	defer sl.release()
	if held[sl.uid] {
		t.Fatalf("second supervisor got uid %d, already held", sl.uid)
	}
}
