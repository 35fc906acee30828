package wasm

import (
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
