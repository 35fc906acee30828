package wasm

import (
	"testing"
	"time"
)

func TestClockQuantised(t *testing.T) {
	tests := []struct {
		name string
		res  time.Duration
	}{
		{name: "1ns (no quantisation)", res: time.Nanosecond},
		{name: "1us", res: time.Microsecond},
		{name: "default 1ms", res: DefaultClockResolution},
		{name: "7ms (not a divisor of a second)", res: 7 * time.Millisecond},
		{name: "max", res: MaxClockResolution},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClock(tt.res)
			if got := time.Duration(c.resolution()); got != tt.res {
				t.Errorf("reported resolution %v, want %v", got, tt.res)
			}
			var last int64 = -1
			for range 2000 {
				mono := c.nanotime()
				if mono%int64(tt.res) != 0 {
					t.Fatalf("nanotime %d is not a multiple of %v", mono, tt.res)
				}
				if mono < last {
					t.Fatalf("nanotime went back: %d after %d", mono, last)
				}
				last = mono
				sec, nsec := c.walltime()
				if wall := sec*int64(time.Second) + int64(nsec); wall%int64(tt.res) != 0 {
					t.Fatalf("walltime %d.%09d is not a multiple of %v", sec, nsec, tt.res)
				}
			}
		})
	}
}

// TestClockFloors drives the clock with a fake time source to check the exact values.
func TestClockFloors(t *testing.T) {
	base := time.Unix(1_700_000_000, 0)
	tests := []struct {
		name     string
		elapsed  time.Duration
		res      time.Duration
		wantMono int64
		wantSec  int64
		wantNsec int32
	}{
		{name: "just under a tick", elapsed: 999_999 * time.Nanosecond, res: time.Millisecond, wantMono: 0, wantSec: 1_700_000_000, wantNsec: 0},
		{name: "exactly a tick", elapsed: time.Millisecond, res: time.Millisecond, wantMono: 1_000_000, wantSec: 1_700_000_000, wantNsec: 1_000_000},
		{name: "2.5 ticks", elapsed: 2500 * time.Microsecond, res: time.Millisecond, wantMono: 2_000_000, wantSec: 1_700_000_000, wantNsec: 2_000_000},
		{name: "across a second", elapsed: 1_234_567_891, res: 100 * time.Millisecond, wantMono: 1_200_000_000, wantSec: 1_700_000_001, wantNsec: 200_000_000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &clock{res: tt.res, start: base, now: func() time.Time { return base.Add(tt.elapsed) }}
			if got := c.nanotime(); got != tt.wantMono {
				t.Errorf("nanotime = %d, want %d", got, tt.wantMono)
			}
			if sec, nsec := c.walltime(); sec != tt.wantSec || nsec != tt.wantNsec {
				t.Errorf("walltime = %d.%09d, want %d.%09d", sec, nsec, tt.wantSec, tt.wantNsec)
			}
		})
	}
}
