package sandbox

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/agentbox/agentbox/outcome"
)

// countBomb is a module whose one section declares 2^32-1 entries in a few bytes: wazero
// would allocate by the count before reading an entry.
func countBomb(section byte) []byte {
	m := []byte{0x00, 'a', 's', 'm', 0x01, 0x00, 0x00, 0x00}
	return append(m, section, 0x05, 0xff, 0xff, 0xff, 0xff, 0x0f)
}

// TestFaultsNameTheirCulprit drives the full sandbox (compile child, then run child) with
// faults a guest or a caller provokes. Each gets the outcome or error that names its
// culprit: the module's own (invalid_module, trap), or a request the caller must fix (an
// error before any spawn). None may be sandbox_error, which would tell a CI runner to
// retry our "fault".
func TestFaultsNameTheirCulprit(t *testing.T) {
	sb := newTestSandbox(t, "")
	sections := []struct {
		name string
		id   byte
	}{{"type", 1}, {"import", 2}, {"function", 3}, {"table", 4}, {"memory", 5}, {"global", 6},
		{"export", 7}, {"element", 9}, {"code", 10}, {"data", 11}}
	type row struct {
		name    string
		spec    Spec
		want    outcome.Outcome
		wantErr error // refused before the spawn
		wantMsg string
	}
	var rows []row
	for _, s := range sections {
		rows = append(rows, row{name: s.name + " section count bomb", spec: Spec{Module: countBomb(s.id)}, want: outcome.InvalidModule})
	}
	hello := readModule(t, "../testdata/modules/hello.wasm")
	rows = append(rows,
		row{name: "poll_oneoff subscription overflow", spec: Spec{Module: readModule(t, "../testdata/modules/pollbomb.wasm")}, want: outcome.Trap, wantMsg: "poll_oneoff"},
		row{name: "4097 args", spec: Spec{Module: hello, Args: make([]string, MaxArgs+1)}, wantErr: ErrBadSpec, wantMsg: "4097 args"},
		row{name: "1.2 MB of env", spec: Spec{Module: hello, Env: []string{"BIG=" + strings.Repeat("x", 1200<<10)}}, wantErr: ErrBadSpec, wantMsg: "args and env"},
		row{name: "1000 cpus", spec: Spec{Module: hello, Limits: Limits{CPUs: 1000}}, wantErr: ErrBadLimit, wantMsg: "cpus 1000"},
		row{name: "module over the size limit", spec: Spec{Module: make([]byte, DefaultMaxModuleBytes+1)}, wantErr: ErrBadSpec, wantMsg: "module size limit"},
		row{name: "relative guest path", spec: Spec{Module: hello, Dirs: []Dir{{HostPath: t.TempDir(), GuestPath: "data"}}}, wantErr: ErrBadSpec, wantMsg: "absolute"},
	)
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			r.spec.Limits.Timeout = 5 * time.Minute
			res, err := sb.Run(context.Background(), r.spec)
			if r.wantErr != nil {
				if !errors.Is(err, r.wantErr) || !strings.Contains(err.Error(), r.wantMsg) {
					t.Fatalf("err %v; want %v naming %q, before any spawn", err, r.wantErr, r.wantMsg)
				}
				return
			}
			if err != nil || res.Outcome != r.want || !strings.Contains(res.Message, r.wantMsg) {
				t.Fatalf("%s %q (err %v); want %s naming %q", res.Outcome, res.Message, err, r.want, r.wantMsg)
			}
			if strings.Contains(string(res.Stderr), "goroutine ") {
				t.Fatalf("a Go trace reached the task's stderr: %.200s", res.Stderr)
			}
		})
	}
}
