package verdict

import (
	"encoding/json"
	"errors"
	"testing"
)

func TestErrorWire(t *testing.T) {
	base := errors.New("bad size")
	tests := []struct {
		name string
		err  *Error
		want string
	}{
		{name: "field and value", err: Errorf(InvalidArgument, "--memory", "64Q", "--memory %q: %w", "64Q", base),
			want: `{"error":{"code":"invalid_argument","message":"--memory \"64Q\": bad size","field":"--memory","value":"64Q"}}`},
		{name: "no field", err: Errorf(Unsupported, "", "", "not root"),
			want: `{"error":{"code":"unsupported","message":"not root"}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := json.Marshal(ErrorBody{Error: tt.err})
			if err != nil || string(b) != tt.want {
				t.Fatalf("got %s (%v), want %s", b, err, tt.want)
			}
		})
	}
	if !errors.Is(tests[0].err, base) {
		t.Error("errors.Is does not see the %w cause through Error")
	}
}

func TestExitCodeOnlyWhenExited(t *testing.T) {
	code := uint32(0)
	tests := []struct {
		name    string
		v       Verdict
		present bool
	}{
		{name: "ok keeps exit code 0", v: Verdict{Outcome: "ok", ExitCode: &code}, present: true},
		{name: "trap has none", v: Verdict{Outcome: "trap"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, _ := json.Marshal(tt.v)
			var m map[string]json.RawMessage
			json.Unmarshal(b, &m)
			if _, ok := m["exit_code"]; ok != tt.present {
				t.Fatalf("%s: exit_code present %t, want %t", b, ok, tt.present)
			}
		})
	}
}
