//go:build linux && cgo

package seccomp

import (
	"encoding/binary"
	"errors"
	"testing"
)

// TestCompileDefault: the table compiles, the bytes pass Validate, and the
// program starts with the architecture check and ends with a return.
func TestCompileDefault(t *testing.T) {
	p := defaultOrSkip(t)
	bpf, err := Compile(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := Validate(bpf); err != nil {
		t.Fatal(err)
	}
	const ldAbsW, offArch, retK = 0x20, 4, 0x06
	if code, k := binary.NativeEndian.Uint16(bpf), binary.NativeEndian.Uint32(bpf[4:]); code != ldAbsW || k != offArch {
		t.Errorf("first instruction = code %#x k %#x, want load of seccomp_data.arch", code, k)
	}
	if code := binary.NativeEndian.Uint16(bpf[len(bpf)-8:]); code != retK {
		t.Errorf("last instruction code %#x, want BPF_RET|BPF_K", code)
	}
	t.Logf("Default() compiles to %d instructions", len(bpf)/8)
}

func TestCompileRejects(t *testing.T) {
	tests := []struct {
		name string
		p    Policy
		want error
	}{
		{name: "empty policy", p: Policy{}, want: ErrNoPolicyForArch},
		{name: "typo", p: Policy{Rules: []Rule{{Names: []string{"opennat"}, Action: Allow, Reason: "r"}}}, want: ErrUnknownSyscall},
		{name: "malformed", p: Policy{Rules: []Rule{{Names: []string{"read"}, Action: Allow}}}, want: ErrInvalidPolicy},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Compile(tt.p); !errors.Is(err, tt.want) {
				t.Errorf("Compile() = %v, want %v", err, tt.want)
			}
		})
	}
}

// TestCompileDeterministic: the supervisor may compile in several places
// (tests, `agentbox check`); the same table must give the same bytes.
func TestCompileDeterministic(t *testing.T) {
	p := defaultOrSkip(t)
	a, errA := Compile(p)
	b, errB := Compile(p)
	if errA != nil || errB != nil || string(a) != string(b) {
		t.Fatalf("two compiles differ (errors %v, %v; %d vs %d bytes)", errA, errB, len(a), len(b))
	}
}

// BenchmarkCompile records the once-per-supervisor cost of Compile(Default()).
func BenchmarkCompile(b *testing.B) {
	p := Default()
	for b.Loop() {
		if _, err := Compile(p); err != nil {
			b.Fatal(err)
		}
	}
}
