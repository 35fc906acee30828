package seccomp

import (
	"fmt"
	"math"
	"slices"
)

// A syscall whose rules list values of one argument and end with a NotListed
// rule is pinned: those values, and nothing else. The kernel's filter cannot
// say "none of these" in one rule (libseccomp tests an argument once per
// rule), so Compile spells the rest out as ranges; the table says it once.

// pinned returns, for a syscall with a NotListed rule, the argument it pins
// and the values its other rules list; nil for a syscall without one. Each
// other rule must be a single Equal on that argument: anything else would make
// "the rest" something seccomp cannot be told exactly.
func (p Policy) pinned(name string) (*pin, error) {
	var pn *pin
	var others []Rule
	for _, r := range p.Rules {
		if !slices.Contains(r.Names, name) {
			continue
		}
		if !slices.ContainsFunc(r.When, func(c Cond) bool { return c.Op == NotListed }) {
			others = append(others, r)
			continue
		}
		if pn != nil {
			return nil, fmt.Errorf("%w: %s has two NotListed rules", ErrInvalidPolicy, name)
		}
		if len(r.When) != 1 || r.Action == Allow {
			return nil, fmt.Errorf("%w: %s: a NotListed rule must deny and have no other condition", ErrInvalidPolicy, name)
		}
		pn = &pin{arg: r.When[0].Arg}
	}
	if pn == nil {
		return nil, nil
	}
	for _, r := range others {
		if len(r.When) != 1 || r.When[0].Op != Equal || r.When[0].Arg != pn.arg {
			return nil, fmt.Errorf("%w: %s is pinned on argument %d, so each of its rules must be one Equal on it (%v)",
				ErrInvalidPolicy, name, pn.arg, r.When)
		}
		v := r.When[0].Value
		if slices.Contains(pn.values, v) {
			return nil, fmt.Errorf("%w: %s lists %#x twice", ErrInvalidPolicy, name, v)
		}
		pn.values = append(pn.values, v)
	}
	if len(pn.values) == 0 {
		return nil, fmt.Errorf("%w: %s has a NotListed rule and no value listed", ErrInvalidPolicy, name)
	}
	return pn, nil
}

// pin is one syscall pinned to a set of values of one argument.
type pin struct {
	arg    uint
	values []uint64
}

func hasNotListed(r Rule) bool {
	return slices.ContainsFunc(r.When, func(c Cond) bool { return c.Op == NotListed })
}

// expanded returns the rules Compile hands to libseccomp: every NotListed
// rule replaced, per syscall, by one rule per range of values its syscall's
// other rules leave. Check must have passed.
func (p Policy) expanded() []Rule {
	var out []Rule
	for _, r := range p.Rules {
		if !hasNotListed(r) {
			out = append(out, r)
			continue
		}
		for _, n := range r.Names {
			pn, _ := p.pinned(n)
			for _, c := range rest(pn.arg, pn.values) {
				out = append(out, Rule{Names: []string{n}, Action: r.Action, Reason: r.Reason, When: []Cond{c}})
			}
		}
	}
	return out
}

// rest returns conditions on arg, one per rule, that together match exactly
// the 64-bit values not in vals: below the lowest, above the highest, and
// each gap between two listed values.
func rest(arg uint, vals []uint64) []Cond {
	vals = slices.Sorted(slices.Values(vals))
	if len(vals) == 1 {
		return []Cond{{Arg: arg, Op: NotEqual, Value: vals[0]}}
	}
	var out []Cond
	if vals[0] > 0 {
		out = append(out, Cond{Arg: arg, Op: Less, Value: vals[0]})
	}
	for i := 0; i+1 < len(vals); i++ {
		if vals[i]+1 < vals[i+1] {
			out = append(out, blocks(arg, vals[i]+1, vals[i+1]-1)...)
		}
	}
	if last := vals[len(vals)-1]; last < math.MaxUint64 {
		out = append(out, Cond{Arg: arg, Op: Greater, Value: last})
	}
	return out
}

// blocks covers lo..hi (0 < lo <= hi) with aligned power-of-two blocks, one
// MaskedEqual each (Equal for a block of one), largest first from lo.
func blocks(arg uint, lo, hi uint64) []Cond {
	var out []Cond
	for {
		size := lo & -lo
		for size-1 > hi-lo {
			size >>= 1
		}
		if size == 1 {
			out = append(out, Cond{Arg: arg, Op: Equal, Value: lo})
		} else {
			out = append(out, Cond{Arg: arg, Op: MaskedEqual, Mask: ^(size - 1), Value: lo})
		}
		if lo+(size-1) == hi {
			return out
		}
		lo += size
	}
}
