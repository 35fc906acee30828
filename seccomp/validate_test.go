package seccomp

import (
	"errors"
	"testing"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		n    int
		ok   bool
	}{
		{name: "empty", n: 0},
		{name: "one byte", n: 1},
		{name: "seven bytes", n: 7},
		{name: "one instruction", n: 8, ok: true},
		{name: "one and a half", n: 12},
		{name: "BPF_MAXINSNS", n: 4096 * 8, ok: true},
		{name: "BPF_MAXINSNS+1", n: 4097 * 8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Validate(make([]byte, tt.n))
			if tt.ok && err != nil {
				t.Errorf("Validate(%d bytes) = %v, want nil", tt.n, err)
			}
			if !tt.ok && !errors.Is(err, ErrInvalidBPF) {
				t.Errorf("Validate(%d bytes) = %v, want ErrInvalidBPF", tt.n, err)
			}
		})
	}
}

// FuzzValidate: Validate never panics and accepts exactly the lengths the
// kernel could take.
func FuzzValidate(f *testing.F) {
	f.Add([]byte{})
	f.Add(make([]byte, 8))
	f.Add(make([]byte, 13))
	f.Fuzz(func(t *testing.T, b []byte) {
		want := len(b) > 0 && len(b)%8 == 0 && len(b)/8 <= 4096
		if got := Validate(b) == nil; got != want {
			t.Fatalf("Validate(%d bytes) ok = %v, want %v", len(b), got, want)
		}
	})
}
