// Package units parses the human sizes users type on the command line ("64Mi", "1Gi",
// "512k"), refusing anything ambiguous with an error that names the value and the forms
// accepted.
package units

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// ErrBadSize is wrapped by every ParseSize failure.
var ErrBadSize = errors.New("bad size")

// suffixes maps a unit to its multiplier. Binary (Ki, Mi, Gi) and decimal (k, M, G) units are
// both accepted because both are common in container tooling (Kubernetes quantities).
var suffixes = []struct {
	unit string
	mult uint64
}{
	{"Ki", 1 << 10}, {"Mi", 1 << 20}, {"Gi", 1 << 30}, {"Ti", 1 << 40},
	{"k", 1e3}, {"K", 1e3}, {"M", 1e6}, {"G", 1e9}, {"T", 1e12},
	{"B", 1}, {"", 1},
}

// ParseSize parses a byte size such as "1048576", "64Mi", "1Gi" or "500M". Fractions are
// allowed ("1.5Gi") and rounded down to a whole byte.
func ParseSize(s string) (uint64, error) {
	t := strings.TrimSpace(s)
	if t == "" {
		return 0, fmt.Errorf("%w: empty; use a number with an optional unit: 64Mi, 1Gi, 500M", ErrBadSize)
	}
	num, mult, err := splitUnit(t)
	if err != nil {
		return 0, fmt.Errorf("%w %q: %w", ErrBadSize, s, err)
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || v < 0 || math.IsNaN(v) || math.IsInf(v, 0) || strings.ContainsAny(num, "eEpPxX_") {
		return 0, fmt.Errorf("%w %q: %q is not a non-negative number", ErrBadSize, s, num)
	}
	total := v * float64(mult)
	if total >= math.MaxUint64/2 {
		return 0, fmt.Errorf("%w %q: too large", ErrBadSize, s)
	}
	return uint64(total), nil
}

// splitUnit separates the numeric part from a known unit suffix.
func splitUnit(s string) (string, uint64, error) {
	for _, sf := range suffixes {
		if sf.unit != "" && !strings.HasSuffix(s, sf.unit) {
			continue
		}
		num := strings.TrimSpace(strings.TrimSuffix(s, sf.unit))
		if num == "" || !isNumeric(num) {
			continue
		}
		return num, sf.mult, nil
	}
	return "", 0, errors.New("unknown unit; use B, Ki, Mi, Gi, Ti (powers of 1024) or k, M, G, T (powers of 1000)")
}

func isNumeric(s string) bool {
	for _, r := range s {
		if (r < '0' || r > '9') && r != '.' {
			return false
		}
	}
	return true
}

// FormatSize renders n in the largest binary unit that divides it exactly ("64Mi"), so
// messages echo limits in the form users typed them.
func FormatSize(n uint64) string {
	for _, u := range []struct {
		unit string
		mult uint64
	}{{"Ti", 1 << 40}, {"Gi", 1 << 30}, {"Mi", 1 << 20}, {"Ki", 1 << 10}} {
		if n >= u.mult && n%u.mult == 0 {
			return fmt.Sprintf("%d%s", n/u.mult, u.unit)
		}
	}
	return fmt.Sprintf("%dB", n)
}
