package wasm

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/agentbox/agentbox/outcome"
)

// TestBeforeGuest checks the hook the sandbox stacks its no-new-exec filter in: called once
// per run, before the guest writes anything, and its error stops the run as ours.
func TestBeforeGuest(t *testing.T) {
	ctx := context.Background()
	for _, tt := range []struct {
		name string
		err  error
		want outcome.Outcome
		out  string
	}{
		{"nil lets the guest run", nil, outcome.OK, "hello from wasm\n"},
		{"an error stops it first", errors.New("no filter"), outcome.SandboxError, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var stdout bytes.Buffer
			calls := 0
			cfg := Config{Stdout: &stdout, BeforeGuest: func() error {
				calls++
				if stdout.Len() != 0 {
					t.Errorf("guest wrote %q before the hook", stdout.String())
				}
				return tt.err
			}}
			r := Run(ctx, load(t, "hello.wasm"), cfg)
			if r.Outcome != tt.want || stdout.String() != tt.out || calls != 1 {
				t.Fatalf("%s %q, stdout %q, %d calls; want %s, %q, 1 call", r.Outcome, r.Message, stdout.String(), calls, tt.want, tt.out)
			}
			if tt.err != nil && !strings.Contains(r.Message, tt.err.Error()) {
				t.Fatalf("message %q does not name %q", r.Message, tt.err)
			}
		})
	}
}
