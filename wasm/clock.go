package wasm

import (
	"context"
	"errors"
	"time"

	"github.com/tetratelabs/wazero/sys"
)

// clock feeds the guest quantised time: every reading is floored to a multiple of the
// resolution, so the guest cannot time events finer than that (DESIGN.md invariant 5).
// The monotonic reading counts from the clock's creation, so the guest does not learn
// the host's uptime either.
type clock struct {
	res   time.Duration
	start time.Time        // carries Go's monotonic reading
	now   func() time.Time // time.Now outside tests
}

// newClock returns a clock quantised to res (res > 0).
func newClock(res time.Duration) *clock {
	return &clock{res: res, start: time.Now(), now: time.Now}
}

// walltime implements sys.Walltime: the real-time clock floored to the resolution.
func (c *clock) walltime() (sec int64, nsec int32) {
	ns := c.now().UnixNano()
	ns -= ns % int64(c.res)
	return ns / int64(time.Second), int32(ns % int64(time.Second))
}

// nanotime implements sys.Nanotime: monotonic nanoseconds since the clock was made,
// floored to the resolution. Flooring a non-decreasing value keeps it non-decreasing.
func (c *clock) nanotime() int64 {
	d := c.now().Sub(c.start)
	return int64(d - d%c.res)
}

// resolution is what clock_res_get reports.
func (c *clock) resolution() sys.ClockResolution {
	return sys.ClockResolution(c.res)
}

// nanosleep implements sys.Nanosleep with a real sleep: the guest gives up its CPU.
func nanosleep(ns int64) {
	time.Sleep(time.Duration(ns))
}

// sleepUntilDone is nanosleep for Config.CloseOnContextDone: the sleep also ends when ctx
// does, and then stops the guest with the exit wazero itself uses for a done context.
// poll_oneoff takes its timeout from the guest, up to 2^64-1 ns, and wazero only checks
// the context between the guest's own instructions, so a sleep that ignored ctx would
// outlive the deadline; one that merely returned early would let the guest run on.
func sleepUntilDone(ctx context.Context) sys.Nanosleep {
	return func(ns int64) {
		t := time.NewTimer(time.Duration(ns))
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			panic(contextExit(ctx)) // wazero returns an *sys.ExitError panic as the call's error
		}
	}
}

// contextExit is the exit wazero's CloseOnContextDone gives a guest stopped by ctx.
func contextExit(ctx context.Context) *sys.ExitError {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return sys.NewExitError(sys.ExitCodeDeadlineExceeded)
	}
	return sys.NewExitError(sys.ExitCodeContextCanceled)
}
