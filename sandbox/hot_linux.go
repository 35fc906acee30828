package sandbox

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/agentbox/agentbox/internal/testhook"
	"github.com/agentbox/agentbox/outcome"
)

// hot keeps, for the most run modules, one child each that has gone further than
// the warm pool's: past its exec into stage two, behind its seccomp filter, with the
// module's compiled code loaded from the cache (hotStage). What a task of that module
// then saves is the exec, the Go runtime start of stage two and wazero's load of the
// code: most of a cached Go agent's start.
//
// A hot child is made from code the cache already holds, never by a compile of its own,
// runs no task code until its task comes, and, like any child, takes one task and is
// discarded with it. A digest gets one after its second run (a module run once is not
// worth a child held for it) while there is room; past that, a digest takes the place of
// the least run one only once it has run twice as often, so that modules run in turn,
// more of them than there is room for, do not discard each other's children unused.
// Waiting hot children are outside any memory budget of the caller's (the daemon's
// --memory-budget counts running tasks): each holds its runtime and its module's code.
//
// A nil *hot keeps no hot children.
type hot struct {
	sb   *Sandbox
	size int // digests with a child, ready or warming, at most

	mu      sync.Mutex
	ready   map[hotKey]*child // each holds one of size places
	warming map[hotKey]*child // so does each of these; nil until the child is started
	// taken keys have their hot child running a task: the key keeps its place until the
	// task is done (its next child warms then) or another task of it warms one sooner.
	taken   map[hotKey]int
	runs    map[hotKey]int // runs seen per key, halved every hotAging runs
	counted int            // runs since the last halving
	// broken keys had a child fail to load (a module whose initial memory passes its
	// limit, say): not warmed again until the next halving forgets them.
	broken map[hotKey]bool
	closed bool

	wg           sync.WaitGroup
	used, failed atomic.Int64
}

// hotKey is what a hot child is made for: one module's compiled code, vetted against one
// memory limit (wasm.Program.Prepare refuses another).
type hotKey struct {
	digest string
	memory uint64
}

// hotAging is how many runs pass between two halvings of every run count: a module run
// often long ago gives way to one run often now, and the counts of modules run once go.
const hotAging = 1024

func newHot(sb *Sandbox, size int) *hot {
	if size == 0 || sb.cache == nil {
		return nil
	}
	return &hot{sb: sb, size: size, ready: map[hotKey]*child{}, warming: map[hotKey]*child{}, taken: map[hotKey]int{},
		runs: map[hotKey]int{}, broken: map[hotKey]bool{}}
}

// hotKey returns the task's key, and false when the task cannot run in a hot child: it
// preopens directories (mounting them needs stage one), is a test's payload or negative
// control, or the sandbox keeps no hot children.
func (t *task) hotKey() (hotKey, bool) {
	if t.sb.hot == nil || len(t.spec.Dirs) > 0 || t.hooks.Payload != "" || t.hooks.Unsafe != (testhook.Unsafe{}) {
		return hotKey{}, false
	}
	return hotKey{digest: t.digest(), memory: t.limits.MemoryBytes}, true
}

// digest is the module's sha256, computed once per task.
func (t *task) digest() string {
	if t.moduleDigest == "" {
		sum := sha256.Sum256(t.spec.Module)
		t.moduleDigest = hex.EncodeToString(sum[:])
	}
	return t.moduleDigest
}

// take returns the ready child for k, or nil. It never waits for one that is warming.
// A child taken keeps k's place until done.
func (h *hot) take(k hotKey) *child {
	h.mu.Lock()
	c := h.ready[k]
	delete(h.ready, k)
	if c != nil {
		h.taken[k]++
	}
	h.mu.Unlock()
	if c != nil && exited(c.cmd.Process.Pid) {
		c.release() // died while it waited: the task starts its own child
		h.mu.Lock()
		h.untake(k)
		h.mu.Unlock()
		return nil
	}
	return c
}

// done ends the task of k's taken child, then counts it as a run: the place k kept goes
// to its next child.
func (h *hot) done(k hotKey, module []byte, w wireSpec) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.untake(k)
	h.count(k, module, w)
}

func (h *hot) untake(k hotKey) {
	if h.taken[k]--; h.taken[k] <= 0 {
		delete(h.taken, k)
	}
}

// places is how many of size are held: by the keys with a child ready, warming or taken.
func (h *hot) places() int {
	n := len(h.ready) + len(h.warming)
	for k := range h.taken {
		if _, warming := h.warming[k]; !warming && h.ready[k] == nil {
			n++
		}
	}
	return n
}

// ran records a run of k's module and warms a child for it, unless one is ready or
// warming: from its second run while there is room, else once it has run at least twice
// as often as the least run module with a ready child, which gives that child up. module
// is the task's; warm keeps it until the child has loaded it.
func (h *hot) ran(k hotKey, module []byte, w wireSpec) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.count(k, module, w)
}

// count is ran with h.mu held.
func (h *hot) count(k hotKey, module []byte, w wireSpec) {
	if h.closed {
		return
	}
	h.runs[k]++
	if h.counted++; h.counted >= hotAging {
		h.counted = 0
		clear(h.broken)
		for r, n := range h.runs {
			if n < 2 {
				delete(h.runs, r)
			} else {
				h.runs[r] = n / 2
			}
		}
	}
	n := h.runs[k]
	if _, warming := h.warming[k]; n < 2 || warming || h.ready[k] != nil || h.broken[k] {
		return
	}
	if h.taken[k] == 0 && h.places() >= h.size {
		// A warming child is not stopped for another, nor a taken one's place given away:
		// only a ready one gives its place up.
		var victim hotKey
		least := -1
		for r := range h.ready {
			if least < 0 || h.runs[r] < least {
				victim, least = r, h.runs[r]
			}
		}
		if least < 0 || n < 2*least {
			return
		}
		h.release(h.ready[victim])
		delete(h.ready, victim)
	}
	h.warming[k] = nil
	h.wg.Add(1)
	go h.warmUp(k, bytes.Clone(module), w) // the caller may reuse its buffer once Run returns
}

// release discards c beside the caller, which holds h.mu; close waits for it.
func (h *hot) release(c *child) {
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		c.release()
	}()
}

// warmUp makes k's child ready, or forgets k if it cannot.
func (h *hot) warmUp(k hotKey, module []byte, w wireSpec) {
	defer h.wg.Done()
	c, err := h.warm(k, module, w)
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.warming, k)
	if err != nil || h.closed {
		if err != nil && !h.closed && !errors.Is(err, errNotCached) {
			h.failed.Add(1)
			h.broken[k] = true
		}
		if c != nil {
			h.release(c)
		}
		return
	}
	h.ready[k] = c
}

// warm makes a hot child for k from k's cache entry, held shared until the child has
// loaded it, so that no eviction takes it from under the load.
func (h *hot) warm(k hotKey, module []byte, w wireSpec) (*child, error) {
	code := h.sb.cache.held(k.digest)
	if code == nil {
		return nil, errNotCached
	}
	defer code.release()
	return h.sb.warmChild(module, hotSpec(w, code.dir, k.memory), func(c *child) bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		if !h.closed {
			h.warming[k] = c // close kills it, ending warmChild's wait
		}
		return !h.closed
	})
}

// hotSpec is the spec a hot child is made with: w's filter, walls and payload, the
// compiled code at dir (none for a payload without a module), and the pool's limits but
// for memory, which is the task's (the code is vetted against it, and loading a large
// module may need more than the pool's): the child waits under these, and the task's
// replace them at its handoff. It has no args, env or anything else of a task.
func hotSpec(w wireSpec, dir string, memory uint64) wireSpec {
	lim := poolLimits
	lim.MemoryBytes = memory
	ws := wireSpec{Limits: lim, Filter: w.Filter, AllowSpeculation: w.AllowSpeculation, Payload: w.Payload,
		Unsafe: w.Unsafe, Hot: true}
	if dir != "" {
		ws.CacheDir, ws.CacheMode = dir, cacheRO
	}
	return ws
}

// warmChild starts a child and hands it ws, then waits until its stage two says the
// module is loaded (readyByte). register, if set, sees the child as soon as it exists
// and may refuse it (the hot children are closing).
func (sb *Sandbox) warmChild(module []byte, ws wireSpec, register func(*child) bool) (*child, error) {
	c, err := sb.startChild(ws.Limits, ws.Unsafe)
	if err != nil {
		return nil, err
	}
	if register != nil && !register(c) {
		return c, errors.New("hot children closed")
	}
	specBytes, err := encodeSpec(ws)
	if err != nil {
		return c, err
	}
	t := &task{sb: sb, spec: Spec{Module: module}}
	if err := t.handoff(c, ws, ws.Limits, specBytes, false); err != nil {
		return c, err
	}
	// The load is a cache read, well inside the compile's budget.
	c.spec.SetReadDeadline(time.Now().Add(sb.cfg.Compile.Timeout))
	var b [1]byte
	if _, err := io.ReadFull(c.spec, b[:]); err != nil || b[0] != readyByte {
		if err == io.EOF {
			err = errHotEnded // its stage two ended: the result pipe says why
		}
		return c, fmt.Errorf("hot child %d did not load its module (%q): %w", c.cmd.Process.Pid, b[0], err)
	}
	c.spec.SetReadDeadline(time.Time{})
	return c, nil
}

// errNotCached: the digest's cache entry is gone (evicted since its run) or busy (being
// compiled or evicted now); no child is made, and none failed.
var errNotCached = errors.New("the module's compiled code is not in the cache now")

// errHotEnded: a hot child's stage two ended before it was ready, having reported why (a
// module its compile took but whose load the guest's limits refuse, e.g. an initial
// memory above the memory limit).
var errHotEnded = errors.New("it ended before it was ready")

// runHot runs the task in a hot child, handing it w, the task's own hot spec. ok is false
// when the child could not take it (it died while it waited): the task then runs as if
// there had been none.
func (t *task) runHot(ctx context.Context, c *child, w wireSpec) (Result, bool) {
	t.began = time.Now()
	t.deadline = t.began.Add(t.limits.Timeout)
	if err := t.handoffHot(c, w); err != nil {
		c.release()
		return Result{}, false
	}
	defer c.release()
	if t.sb.hot != nil {
		t.sb.hot.used.Add(1)
	}
	res := t.supervise(ctx, c, t.limits, false)
	res.Limits = t.limits
	return res, true
}

// runInNewHot runs the task in a hot child made for it now (testhook.Hooks.Hot): its
// module's compiled code first, as for any run, then a child warmed with it (or with the
// payload alone), then the handoff a task taking a waiting hot child has.
func (t *task) runInNewHot(ctx context.Context) Result {
	w := t.wire()
	if len(t.spec.Module) > 0 {
		code, res, ok := t.compiled(ctx)
		if !ok {
			return res
		}
		defer code.release()
		w.CacheDir, w.CacheMode = code.dir, cacheRO
	}
	c, err := t.sb.warmChild(t.spec.Module, hotSpec(w, w.CacheDir, t.limits.MemoryBytes), nil)
	if errors.Is(err, errHotEnded) {
		// What stopped the load is the task's verdict, as stageTwo's compile would give it.
		t.began, t.deadline = time.Now(), time.Now().Add(t.limits.Timeout)
		defer c.release()
		res := t.supervise(ctx, c, t.limits, false)
		res.Limits = t.limits
		return res
	}
	if err != nil {
		if c != nil {
			c.release()
		}
		return t.result(outcome.SandboxError, err.Error())
	}
	w.Hot = true
	res, ok := t.runHot(ctx, c, w)
	if !ok {
		return t.result(outcome.SandboxError, "the hot child made for the task died before its handoff")
	}
	res.Usage.CompileMS = t.compileMS
	return res
}

// handoffHot gives a hot child its task: the limits into its cgroup and its rlimits
// first (it waits under the pool's), then the task's spec as the last frame on the
// socket, which then closes. The child has read nothing of the task before this.
func (t *task) handoffHot(c *child, w wireSpec) error {
	pid := c.cmd.Process.Pid
	lim := t.limits
	if err := c.group.SetLimits(cgroupLimits(lim, w.Unsafe)); err != nil {
		return fmt.Errorf("limits for hot child %d: %w", pid, err)
	}
	st, err := c.group.Stats()
	if err != nil {
		return fmt.Errorf("hot child %d: %w", pid, err)
	}
	c.cpuBase = st.CPUUsage
	if err := prlimitTask(pid, lim, st.CPUUsage); err != nil {
		return err
	}
	specBytes, err := encodeSpec(w)
	if err != nil {
		return err
	}
	if t.hooks.OnStart != nil {
		t.hooks.OnStart(pid)
	}
	_, err = c.spec.Write(appendFrame(nil, specBytes))
	c.spec.Close()
	c.spec = nil
	if err != nil {
		return fmt.Errorf("hand the task to hot child %d: %w", pid, err)
	}
	return nil
}

// prlimitTask sets the rlimits of stage one's setRlimits that depend on the task, from
// outside: the hot child set them for the pool's limits, and its filter refuses it the
// call. RLIMIT_CPU counts the CPU the child used before its task as well (used: the
// cgroup's count, which is this one process's), as stage one's does.
func prlimitTask(pid int, l Limits, used time.Duration) error {
	cpu := unix.Rlimit{Cur: unix.RLIM_INFINITY, Max: unix.RLIM_INFINITY}
	if l.CPUTime > 0 {
		secs := cpuLimitSeconds(l.CPUTime, used)
		cpu = unix.Rlimit{Cur: secs, Max: secs + 1}
	}
	for _, r := range []struct {
		name     string
		resource int
		lim      unix.Rlimit
	}{
		{"FSIZE", unix.RLIMIT_FSIZE, unix.Rlimit{Cur: l.FileSizeBytes, Max: l.FileSizeBytes}},
		{"CPU", unix.RLIMIT_CPU, cpu},
	} {
		if err := unix.Prlimit(pid, r.resource, &r.lim, nil); err != nil {
			return fmt.Errorf("RLIMIT_%s=%d for hot child %d: %w", r.name, r.lim.Cur, pid, err)
		}
	}
	return nil
}

// close discards every hot child, ready or warming, and waits for the warming to end.
func (h *hot) close() {
	if h == nil {
		return
	}
	h.mu.Lock()
	h.closed = true
	ready := h.ready
	h.ready = map[hotKey]*child{}
	for _, c := range h.warming {
		if c != nil {
			c.cmd.Process.Kill() // its warm sees EOF and releases it
		}
	}
	h.mu.Unlock()
	for _, c := range ready {
		c.release()
	}
	h.wg.Wait()
}

// stats fills in the hot children's part of PoolStats.
func (h *hot) stats(s *PoolStats) {
	if h == nil {
		return
	}
	h.mu.Lock()
	s.HotSize, s.HotReady = h.size, len(h.ready)
	h.mu.Unlock()
	s.HotUsed, s.HotFailed = h.used.Load(), h.failed.Load()
}
