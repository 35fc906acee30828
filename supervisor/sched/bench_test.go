package sched

import (
	"fmt"
	"testing"
)

// BenchmarkSchedulerOverhead is what the daemon's dispatch loop pays per task for its own
// decisions, none of the work (JetStream and the sandbox are measured elsewhere): taking a
// slot and memory and giving them back, from one loop and from every core at once (the
// workers' releases race the loop's admissions), a refusal when the host is full, and the
// round robin's choice of the next tenant among 1 to 1,000 with queued work. "decision"
// is one task's whole sequence in dispatch: a slot check, the next tenant, the admission,
// served, and later the release.
func BenchmarkSchedulerOverhead(b *testing.B) {
	const mem = 256 << 20
	b.Run("admit-release", func(b *testing.B) {
		a := NewAdmission(64, 64<<30)
		b.ReportAllocs()
		for b.Loop() {
			if !a.TryAdmit(mem) {
				b.Fatal("refused with every slot free")
			}
			a.Release(mem)
		}
	})
	b.Run("admit-release-parallel", func(b *testing.B) {
		a := NewAdmission(1<<20, 1<<50)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if !a.TryAdmit(mem) {
					b.Error("refused far below the bounds")
					return
				}
				a.Release(mem)
			}
		})
	})
	b.Run("admit-refused", func(b *testing.B) {
		a := NewAdmission(1, 1<<30)
		a.TryAdmit(mem)
		b.ReportAllocs()
		for b.Loop() {
			if a.TryAdmit(mem) {
				b.Fatal("admitted past the only slot")
			}
		}
	})
	for _, n := range []int{1, 10, 100, 1000} {
		tenants := tenantNames(n)
		b.Run(fmt.Sprintf("round-robin-%d-tenants", n), func(b *testing.B) {
			var r RoundRobin
			b.ReportAllocs()
			for b.Loop() {
				t, ok := r.Next(tenants, func(string) bool { return true })
				if !ok {
					b.Fatal("no tenant ready")
				}
				r.Served(t)
			}
		})
		b.Run(fmt.Sprintf("decision-%d-tenants", n), func(b *testing.B) {
			a := NewAdmission(64, 64<<30)
			var r RoundRobin
			b.ReportAllocs()
			for b.Loop() {
				if !a.HasSlot() {
					b.Fatal("no slot")
				}
				t, _ := r.Next(tenants, func(string) bool { return true })
				if !a.TryAdmit(mem) {
					b.Fatal("refused")
				}
				r.Served(t)
				a.Release(mem)
			}
		})
	}
}

// tenantNames returns n tenant names, in no particular order (Next sorts them).
func tenantNames(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("tenant-%04d", (i*7919)%n)
	}
	return out
}
