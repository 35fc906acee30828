package sandbox

import (
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/agentbox/agentbox/internal/testhook"
)

// pool keeps children started ahead of their tasks: each already in its namespaces, its
// cgroup (under the pool's limits) and stage one, holding a host uid, blocked on its spec
// socket until spawn hands it a task (handoff). Each child takes exactly one task and is
// discarded with it, as a child started for the task would be: nothing of one task can
// reach the next. What a task saves is the clone with its namespaces, the cgroup's creation
// and placement (on v1 the first cgroup.procs write after idle waits out a kernel grace
// period) and stage one's Go runtime start.
//
// A nil *pool is the pool of size 0: take always says "start one now".
type pool struct {
	sb    *Sandbox
	ready chan *child
	// tokens holds one token per child the pool may still start: a filler takes one to
	// start a child, take gives one back. Ready and starting children never pass size.
	tokens chan struct{}
	stop   chan struct{}
	closed sync.Once
	wg     sync.WaitGroup
	// fails counts children the pool could not start (for PoolStats); the fillers retry
	// after failRetry, so a host out of uids or memory is not spun against.
	fails atomic.Int64
}

// failRetry is how long a filler waits after a failed start before the next.
const failRetry = 100 * time.Millisecond

// poolLimits are the limits a pooled child waits under. Its task's replace them at the
// handoff, before the child has read anything of the task.
var poolLimits = Limits{}.withDefaults()

// newPool starts refill fillers that keep size children ready. size 0 is no pool.
func newPool(sb *Sandbox, size, refill int) *pool {
	if size == 0 {
		return nil
	}
	p := &pool{sb: sb, ready: make(chan *child, size), tokens: make(chan struct{}, size), stop: make(chan struct{})}
	for range size {
		p.tokens <- struct{}{}
	}
	for range refill {
		p.wg.Add(1)
		go p.fill()
	}
	return p
}

// fill starts a child for every token it gets and queues it ready.
func (p *pool) fill() {
	defer p.wg.Done()
	for {
		select {
		case <-p.stop:
			return
		case <-p.tokens:
		}
		select {
		case <-p.stop: // both were ready: closing wins
			return
		default:
		}
		c, err := p.sb.startChild(poolLimits, testhook.Unsafe{})
		if err != nil {
			p.fails.Add(1)
			p.tokens <- struct{}{}
			select {
			case <-p.stop:
				return
			case <-time.After(failRetry):
			}
			continue
		}
		c.pooled = true
		p.ready <- c // never blocks: with its token, the child has a place
	}
}

// take returns a ready child, or nil when there is none or the task needs a child the
// pool does not make: a negative-control test without a net namespace or a cgroup limit,
// or one that keeps the descriptors its child inherits (it plants one first, which a child
// started before the plant cannot hold). It never waits: with the pool empty, a child
// started now is as quick as waiting for one.
func (p *pool) take(unsafe testhook.Unsafe) *child {
	if p == nil || unsafe.NoNetNamespace || unsafe.NoPidsLimit || unsafe.NoMemoryLimit || unsafe.KeepInheritedFDs {
		return nil
	}
	for {
		select {
		case c := <-p.ready:
			p.tokens <- struct{}{} // never blocks: the child's token comes back
			if exited(c.cmd.Process.Pid) {
				c.release() // died while it waited: the next one, or a child started now
				continue
			}
			return c
		default:
			return nil
		}
	}
}

// exited reports whether our child pid has exited, without reaping it.
func exited(pid int) bool {
	var info unix.Siginfo
	err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, nil)
	return err == nil && info.Signo != 0
}

// close stops the fillers and discards every ready child. Closing twice is closing once.
func (p *pool) close() {
	if p == nil {
		return
	}
	p.closed.Do(func() { close(p.stop) })
	p.wg.Wait()
	for {
		select {
		case c := <-p.ready:
			c.release()
		default:
			return
		}
	}
}

// PoolStats reports the warm pool's and the hot children's state (zero without them).
func (s *Sandbox) PoolStats() PoolStats {
	var st PoolStats
	if s.pool != nil {
		st = PoolStats{Size: cap(s.pool.ready), Ready: len(s.pool.ready), Failed: s.pool.fails.Load()}
	}
	s.hot.stats(&st)
	return st
}
