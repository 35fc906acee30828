package units

import (
	"errors"
	"testing"
)

func TestParseSize(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want uint64
		err  bool
	}{
		{name: "plain bytes", in: "1048576", want: 1 << 20},
		{name: "bytes suffix", in: "512B", want: 512},
		{name: "Ki", in: "4Ki", want: 4096},
		{name: "Mi", in: "64Mi", want: 64 << 20},
		{name: "Gi", in: "1Gi", want: 1 << 30},
		{name: "fraction", in: "1.5Gi", want: 3 << 29},
		{name: "decimal M", in: "500M", want: 500e6},
		{name: "decimal k", in: "2k", want: 2000},
		{name: "spaces", in: " 8Mi ", want: 8 << 20},
		{name: "zero", in: "0", want: 0},
		{name: "unknown unit", in: "64Q", err: true},
		{name: "empty", in: "", err: true},
		{name: "negative", in: "-1Mi", err: true},
		{name: "unit only", in: "Mi", err: true},
		{name: "exponent", in: "1e9", err: true},
		{name: "hex", in: "0x10", err: true},
		{name: "two dots", in: "1.2.3Mi", err: true},
		{name: "too large", in: "99999999999Ti", err: true},
		{name: "lowercase mi is not a unit", in: "64mi", err: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseSize(tt.in)
			if tt.err {
				if !errors.Is(err, ErrBadSize) {
					t.Fatalf("ParseSize(%q) = %d, %v; want ErrBadSize", tt.in, got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseSize(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestFormatSize(t *testing.T) {
	tests := []struct {
		in   uint64
		want string
	}{{64 << 20, "64Mi"}, {1 << 30, "1Gi"}, {1536, "1536B"}, {3 << 10, "3Ki"}, {0, "0B"}}
	for _, tt := range tests {
		if got := FormatSize(tt.in); got != tt.want {
			t.Errorf("FormatSize(%d) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// FuzzParseSize checks that no input panics and that accepted sizes round-trip through
// FormatSize when they are whole binary units.
func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"64Mi", "1Gi", "1.5Gi", "500M", "0", "64Q", "", "-1", "1e9", "Ki"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseSize(s)
		if err != nil {
			return
		}
		back, err := ParseSize(FormatSize(n))
		if err != nil || back != n {
			t.Fatalf("round trip of %q: %d -> %q -> %d, %v", s, n, FormatSize(n), back, err)
		}
	})
}
