package seccomp

import (
	"math"
	"slices"
	"testing"
)

// matches is what the kernel's filter does with one condition.
func matches(c Cond, v uint64) bool {
	switch c.Op {
	case Equal:
		return v == c.Value
	case NotEqual:
		return v != c.Value
	case MaskedEqual:
		return v&c.Mask == c.Value
	case Greater:
		return v > c.Value
	case Less:
		return v < c.Value
	}
	panic("unexpected op in rest")
}

// TestRestIsExact: the rules rest makes match every value not listed and no
// listed one, around each listed value, at both ends of the 64-bit range and
// with high-half garbage (the kernel may ignore it; the filter must not).
func TestRestIsExact(t *testing.T) {
	sets := [][]uint64{
		{0xd0f00},
		{0xd0f00, 0xd0f00 | 0x00300000},
		{0x80, 0x81},
		{4, 8, 14, 15},
		{0, 1, math.MaxUint64},
		{0, math.MaxUint64 - 1},
		{7, 1 << 40, 1<<63 + 5},
	}
	for _, vals := range sets {
		conds := rest(1, vals)
		var probes []uint64
		for _, v := range vals {
			for d := uint64(0); d < 70; d++ {
				probes = append(probes, v+d, v-d, v^1<<(d%64), v|1<<32)
			}
		}
		probes = append(probes, 0, 1, math.MaxUint64, math.MaxUint32, 1<<32)
		for _, v := range probes {
			n := 0
			for _, c := range conds {
				if c.Arg != 1 {
					t.Fatalf("%#x: condition on argument %d, want 1", vals, c.Arg)
				}
				if matches(c, v) {
					n++
				}
			}
			if listed := slices.Contains(vals, v); listed && n != 0 || !listed && n != 1 {
				t.Errorf("set %#x: %#x matches %d of the %d rest rules (listed %v)", vals, v, n, len(conds), listed)
			}
		}
	}
}

// TestExpandedSpellsOutNotListed: Compile never sees NotListed, and the rest
// of a pin shrinks when a rule lists one more value (the victim's extras).
func TestExpandedSpellsOutNotListed(t *testing.T) {
	p := defaultOrSkip(t)
	count := func(p Policy, name string) int {
		n := 0
		for _, r := range p.expanded() {
			if slices.ContainsFunc(r.When, func(c Cond) bool { return c.Op == NotListed }) {
				t.Fatalf("expanded rule %v still has NotListed", r)
			}
			if slices.Contains(r.Names, name) && r.Action == EPERM {
				n++
			}
		}
		return n
	}
	if n := count(p, "clone"); n != 1 {
		t.Errorf("clone's rest is %d rules, want 1 (NotEqual)", n)
	}
	more := Policy{Rules: append(slices.Clone(p.Rules),
		Rule{Names: []string{"clone"}, Action: Allow, Reason: "r", When: []Cond{{Arg: 0, Op: Equal, Value: 0xd0f00 | 0x00300000}}})}
	if err := more.Check(); err != nil {
		t.Fatal(err)
	}
	if n := count(more, "clone"); n < 2 {
		t.Errorf("clone's rest with two values is %d rules, want ranges", n)
	}
}
