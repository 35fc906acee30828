package cgroups

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

func TestModeString(t *testing.T) {
	tests := []struct {
		name string
		mode Mode
		want string
	}{
		{name: "legacy", mode: Legacy, want: "v1"},
		{name: "unified", mode: Unified, want: "v2"},
		{name: "zero", mode: 0, want: "unknown(0)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.mode.String(); got != tt.want {
				t.Errorf("Mode(%d).String() = %q, want %q", int(tt.mode), got, tt.want)
			}
		})
	}
}

func TestLimitsValidate(t *testing.T) {
	tests := []struct {
		name    string
		limits  Limits
		wantErr string // substring naming the limit and value; "" = valid
	}{
		{name: "zero means no limits", limits: Limits{}},
		{name: "typical", limits: Limits{MemoryBytes: 64 << 20, CPUs: 1.5, Pids: 64}},
		{name: "smallest quota", limits: Limits{CPUs: 0.01}},
		{name: "negative memory", limits: Limits{MemoryBytes: -1}, wantErr: "MemoryBytes -1"},
		{name: "negative pids", limits: Limits{Pids: -5}, wantErr: "Pids -5"},
		{name: "negative cpus", limits: Limits{CPUs: -0.5}, wantErr: "CPUs -0.5"},
		{name: "nan cpus", limits: Limits{CPUs: math.NaN()}, wantErr: "CPUs NaN"},
		{name: "inf cpus", limits: Limits{CPUs: math.Inf(1)}, wantErr: "CPUs +Inf"},
		{name: "quota below 1ms", limits: Limits{CPUs: 0.005}, wantErr: "CPUs 0.005 gives a quota of 500µs"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.limits.validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("validate(%+v) = %v, want nil", tt.limits, err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidLimits) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("validate(%+v) = %v, want ErrInvalidLimits containing %q", tt.limits, err, tt.wantErr)
			}
		})
	}
}

func TestCPUQuota(t *testing.T) {
	tests := []struct {
		name string
		cpus float64
		want time.Duration
	}{
		{name: "one core", cpus: 1, want: 100 * time.Millisecond},
		{name: "half", cpus: 0.5, want: 50 * time.Millisecond},
		{name: "two and a half", cpus: 2.5, want: 250 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := (Limits{CPUs: tt.cpus}).cpuQuota(); got != tt.want {
				t.Errorf("cpuQuota(%v) = %v, want %v", tt.cpus, got, tt.want)
			}
		})
	}
}

func TestValidateName(t *testing.T) {
	tests := []struct {
		name  string
		input string
		ok    bool
	}{
		{name: "plain", input: "task-42", ok: true},
		{name: "dots and underscores", input: "a.b_c", ok: true},
		{name: "empty", input: ""},
		{name: "dot", input: "."},
		{name: "dotdot", input: ".."},
		{name: "slash escapes parent", input: "../x"},
		{name: "space", input: "a b"},
		{name: "newline", input: "a\nb"},
		{name: "too long", input: strings.Repeat("a", maxNameLen+1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := validateName(tt.input)
			if (err == nil) != tt.ok || (err != nil && !errors.Is(err, ErrInvalidName)) {
				t.Fatalf("validateName(%q) = %v, want ok=%v", tt.input, err, tt.ok)
			}
		})
	}
}

func TestOwnerPID(t *testing.T) {
	tests := []struct {
		name    string
		dir     string
		wantPID int
		wantOK  bool
	}{
		{name: "ours", dir: groupName(1234, "task-1"), wantPID: 1234, wantOK: true},
		{name: "no dash", dir: "1234"},
		{name: "not a number", dir: "abc-task"},
		{name: "zero pid", dir: "0-task"},
		{name: "negative", dir: "-1-task"},
		{name: "supervisor leaf", dir: "supervisor"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pid, ok := ownerPID(tt.dir)
			if pid != tt.wantPID || ok != tt.wantOK {
				t.Fatalf("ownerPID(%q) = %d, %v; want %d, %v", tt.dir, pid, ok, tt.wantPID, tt.wantOK)
			}
		})
	}
}
