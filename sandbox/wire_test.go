package sandbox

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/agentbox/agentbox/outcome"
	"github.com/agentbox/agentbox/seccomp"
)

func validWire() wireSpec {
	return wireSpec{Version: wireVersion, Args: []string{"m.wasm"}, Limits: Limits{}.withDefaults(), Filter: []byte{1, 2, 3, 4, 5, 6, 7, 8}}
}

func TestDecodeSpec(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(*wireSpec)
		raw     string // used instead of the encoded spec when set
		wantErr string
	}{
		{name: "valid"},
		{name: "not json", raw: "{", wantErr: "bad spawn spec"},
		{name: "wrong version", raw: `{"version":99}`, wantErr: "version 99"},
		{name: "too many dirs", mutate: func(s *wireSpec) { s.Dirs = make([]Dir, MaxDirs+1) }, wantErr: "dirs"},
		{name: "dir without guest path", mutate: func(s *wireSpec) { s.Dirs = []Dir{{HostPath: "/x"}} }, wantErr: "guest path"},
		{name: "bad cache mode", mutate: func(s *wireSpec) { s.CacheMode, s.CacheDir = "rwx", "/c" }, wantErr: "cache mode"},
		{name: "cache mode without dir", mutate: func(s *wireSpec) { s.CacheMode = cacheRO }, wantErr: "cache dir"},
		{name: "memory below minimum", mutate: func(s *wireSpec) { s.Limits.MemoryBytes = 1 << 20 }, wantErr: "memory 1Mi"},
		{name: "zero pids", mutate: func(s *wireSpec) { s.Limits.Pids = 1 }, wantErr: "pids 1"},
		{name: "clock resolution too coarse", mutate: func(s *wireSpec) { s.Limits.ClockResolution = time.Hour }, wantErr: "clock resolution"},
		{name: "oversized", raw: strings.Repeat(" ", maxSpecBytes+1), wantErr: "limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := validWire()
			if tt.mutate != nil {
				tt.mutate(&w)
			}
			raw := []byte(tt.raw)
			if tt.raw == "" {
				var err error
				if raw, err = encodeSpec(w); err != nil {
					t.Fatal(err)
				}
			}
			got, err := decodeSpec(raw)
			if tt.wantErr == "" {
				if err != nil || got.Args[0] != "m.wasm" {
					t.Fatalf("decodeSpec = %+v, %v; want the spec back", got, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("decodeSpec error = %v; want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestDecodeResult(t *testing.T) {
	tests := []struct {
		name, raw string
		want      outcome.Outcome
		wantErr   bool
	}{
		{name: "ok", raw: `{"outcome":"ok"}`, want: outcome.OK},
		{name: "exit with code", raw: `{"outcome":"exit","exit_code":3}`, want: outcome.Exit},
		{name: "outside the closed set", raw: `{"outcome":"pwned"}`, wantErr: true},
		{name: "empty outcome", raw: `{}`, wantErr: true},
		{name: "garbage", raw: `xx`, wantErr: true},
		{name: "oversized", raw: `{"outcome":"ok","message":"` + strings.Repeat("a", maxResultBytes) + `"}`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decodeResult([]byte(tt.raw))
			if (err != nil) != tt.wantErr || (!tt.wantErr && got.Outcome != tt.want) {
				t.Fatalf("decodeResult(%q) = %+v, %v", tt.raw, got, err)
			}
		})
	}
}

func TestEncodeResultCapsMessage(t *testing.T) {
	b := encodeResult(wireResult{Outcome: outcome.Trap, Message: strings.Repeat("x", maxResultBytes)})
	if len(b) > maxResultBytes {
		t.Fatalf("encoded result is %d bytes, cap %d", len(b), maxResultBytes)
	}
	if _, err := decodeResult(b); err != nil {
		t.Fatalf("a capped result must decode: %v", err)
	}
}

// TestReadReport: the pipe holds stage one's posture line, then the result; a stream
// without the line is all result, and a flood after it keeps the posture.
func TestReadReport(t *testing.T) {
	p := Posture{LandlockABI: 7, TimeNamespace: true, StoreBypass: SpeculationDisabledForTask, IndirectBranch: SpeculationEnabled}
	line := string(encodePosture(p))
	ok := `{"outcome":"ok"}`
	tests := []struct {
		name, raw   string
		wantPosture *Posture
		wantResult  string
		wantErr     bool
	}{
		{name: "posture then result", raw: line + ok, wantPosture: &p, wantResult: ok},
		{name: "posture, no result (killed)", raw: line, wantPosture: &p, wantResult: ""},
		{name: "stage one failed first: all result", raw: `{"outcome":"sandbox_error","message":"stage one, mounts: x"}`,
			wantResult: `{"outcome":"sandbox_error","message":"stage one, mounts: x"}`},
		{name: "a result on a line of its own is no posture", raw: ok + "\n" + ok, wantResult: ok + "\n" + ok},
		{name: "posture with no newline is no posture", raw: strings.TrimSuffix(line, "\n"), wantResult: strings.TrimSuffix(line, "\n")},
		{name: "a first line longer than a posture is all result", raw: strings.Repeat("a", 2*maxPostureBytes) + "\n",
			wantResult: strings.Repeat("a", 2*maxPostureBytes) + "\n"},
		{name: "posture and a result of exactly the cap", raw: line + strings.Repeat("a", maxResultBytes), wantPosture: &p,
			wantResult: strings.Repeat("a", maxResultBytes)},
		{name: "a flood after the posture keeps it", raw: line + strings.Repeat("a", maxResultBytes+1), wantPosture: &p, wantErr: true},
		{name: "no posture, exactly the cap in all", raw: ok + "\n" + strings.Repeat("a", maxResultBytes-len(ok)-1),
			wantResult: ok + "\n" + strings.Repeat("a", maxResultBytes-len(ok)-1)},
		{name: "no posture, a byte past the cap", raw: ok + "\n" + strings.Repeat("a", maxResultBytes-len(ok)), wantErr: true},
		{name: "a flood with no posture", raw: strings.Repeat("a", maxResultBytes+1), wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gotP, got, err := readReport(strings.NewReader(tt.raw))
			if (err != nil) != tt.wantErr || string(got) != tt.wantResult || !reflect.DeepEqual(gotP, tt.wantPosture) {
				t.Fatalf("readReport = %+v, %q, %v; want %+v, %q, error %t", gotP, got, err, tt.wantPosture, tt.wantResult, tt.wantErr)
			}
		})
	}
}

func TestLimitsValidate(t *testing.T) {
	ok := Limits{}.withDefaults()
	if err := ok.validate(); err != nil {
		t.Fatalf("defaults must be valid: %v", err)
	}
	bad := ok
	bad.CPUs = 0.001
	if err := bad.validate(); !errors.Is(err, ErrBadLimit) || !strings.Contains(err.Error(), "cpus 0.001") {
		t.Fatalf("validate = %v; want ErrBadLimit naming cpus 0.001", err)
	}
}

// FuzzDecodeSpec: the child decodes bytes that crossed a process boundary; no input may
// panic it, and whatever it accepts must pass its own checks.
func FuzzDecodeSpec(f *testing.F) {
	good, _ := encodeSpec(validWire())
	f.Add(good)
	f.Add([]byte(`{"version":2,"dirs":[{"host_path":"/a","guest_path":"/b"}]}`))
	f.Add([]byte(`{"version":2,"limits":{"memory_bytes":-1}}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := decodeSpec(b)
		if err != nil {
			return
		}
		if s.Version != wireVersion || s.check() != nil {
			t.Fatalf("accepted a spec that fails its own check: %+v", s)
		}
	})
}

// FuzzDecodeResult: the supervisor decodes what a possibly compromised child wrote.
func FuzzDecodeResult(f *testing.F) {
	f.Add([]byte(`{"outcome":"ok"}`))
	f.Add([]byte(`{"outcome":"exit","exit_code":4294967295}`))
	f.Add([]byte(`{"outcome":"ok","message":"\u0000"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeResult(b)
		if err == nil && !r.Outcome.Valid() {
			t.Fatalf("accepted outcome %q outside the closed set", r.Outcome)
		}
	})
}

// BenchmarkSerialization: the messages between the supervisor and a sandbox child, encoded
// and decoded as the two sides do once per task: the spawn spec (the real seccomp program,
// a few args, env and preopens), stage one's posture line with the result after it, and a
// result alone.
func BenchmarkSerialization(b *testing.B) {
	spec := validWire()
	spec.Filter = seccomp.Filter()
	spec.Args = []string{"agent.wasm", "--task", "summarise", "--max-tokens", "512"}
	spec.Env = []string{"LANG=C.UTF-8", "TZ=UTC", "AGENT_MODE=batch"}
	spec.Dirs = []Dir{{HostPath: "/srv/in", GuestPath: "/in", ReadOnly: true}, {HostPath: "/srv/out", GuestPath: "/out"}}
	result := wireResult{Outcome: outcome.OK, Message: "guest returned from _start"}
	report := append(encodePosture(Posture{LandlockABI: 7, TimeNamespace: true,
		StoreBypass: SpeculationDisabledForTask, IndirectBranch: SpeculationDisabledForTask}), encodeResult(result)...)
	for _, tc := range []struct {
		name string
		do   func() (int, error)
	}{
		{"spawn-spec", func() (int, error) {
			raw, err := encodeSpec(spec)
			if err != nil {
				return 0, err
			}
			_, err = decodeSpec(raw)
			return len(raw), err
		}},
		{"posture-and-result", func() (int, error) {
			p, raw, err := readReport(bytes.NewReader(report))
			if err != nil || p == nil {
				return 0, fmt.Errorf("readReport: %+v, %v", p, err)
			}
			_, err = decodeResult(raw)
			return len(report), err
		}},
		{"result", func() (int, error) {
			raw := encodeResult(result)
			_, err := decodeResult(raw)
			return len(raw), err
		}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			var size int
			b.ReportAllocs()
			for b.Loop() {
				n, err := tc.do()
				if err != nil {
					b.Fatal(err)
				}
				size = n
			}
			b.ReportMetric(float64(size), "bytes/msg")
		})
	}
}

// TestHotFor: a hot child refuses a task's spec it was not made for.
func TestHotFor(t *testing.T) {
	warm := validWire()
	warm.Hot, warm.CacheDir, warm.CacheMode = true, "/cache/sha256-x", cacheRO
	tests := []struct {
		name    string
		mutate  func(*wireSpec)
		wantErr bool
	}{
		{name: "its own task", mutate: func(s *wireSpec) { s.Args, s.Env = []string{"p", "a"}, []string{"K=v"} }},
		{name: "other limits but memory", mutate: func(s *wireSpec) { s.Limits.CPUs, s.Limits.Pids, s.Limits.OutputBytes = 0.5, 9, 10 }},
		{name: "not hot", mutate: func(s *wireSpec) { s.Hot = false }, wantErr: true},
		{name: "another filter", mutate: func(s *wireSpec) { s.Filter = []byte{9} }, wantErr: true},
		{name: "another memory limit", mutate: func(s *wireSpec) { s.Limits.MemoryBytes *= 2 }, wantErr: true},
		{name: "another cache entry", mutate: func(s *wireSpec) { s.CacheDir = "/cache/sha256-y" }, wantErr: true},
		{name: "a wall down", mutate: func(s *wireSpec) { s.Unsafe.NoSeccomp = true }, wantErr: true},
		{name: "a payload", mutate: func(s *wireSpec) { s.Payload = "spin" }, wantErr: true},
		{name: "another speculation policy", mutate: func(s *wireSpec) { s.AllowSpeculation = true }, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			task := warm
			tt.mutate(&task)
			if err := task.hotFor(warm); (err != nil) != tt.wantErr || (err != nil && !errors.Is(err, ErrBadSpec)) {
				t.Errorf("hotFor = %v, want an ErrBadSpec error: %t", err, tt.wantErr)
			}
		})
	}
}

// TestReadFrame: frames round-trip, and a long or short one is refused.
func TestReadFrame(t *testing.T) {
	two := appendFrame(appendFrame(nil, []byte("first")), []byte(""))
	r := bytes.NewReader(two)
	for _, want := range []string{"first", ""} {
		if got, err := readFrame(r, 16); err != nil || string(got) != want {
			t.Fatalf("readFrame = %q, %v; want %q", got, err, want)
		}
	}
	for name, tt := range map[string]struct {
		b     []byte
		limit uint32
		want  string
	}{
		"over the limit": {appendFrame(nil, []byte("0123456789")), 4, "limit 4"},
		"cut short":      {appendFrame(nil, []byte("0123456789"))[:8], 16, "frame of 10 bytes"},
		"no length":      {[]byte{0, 0}, 16, "frame length"},
	} {
		if _, err := readFrame(bytes.NewReader(tt.b), tt.limit); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: readFrame error %v, want one containing %q", name, err, tt.want)
		}
	}
}
