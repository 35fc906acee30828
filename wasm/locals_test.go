package wasm

import (
	"context"
	"strings"
	"testing"

	"github.com/agentbox/agentbox/outcome"
)

// moduleWithLocals builds a module whose only function declares n i32 locals.
func moduleWithLocals(n uint32) []byte {
	body := append([]byte{0x01}, appendU32(nil, n)...) // one local group of n
	body = append(body, 0x7f, 0x0b)                    // i32; end
	code := append([]byte{0x01}, appendU32(nil, uint32(len(body)))...)
	code = append(code, body...)
	m := append([]byte(nil), wasmHeader...)
	m = append(m, 0x01, 0x04, 0x01, 0x60, 0x00, 0x00) // type: func () -> ()
	m = append(m, 0x03, 0x02, 0x01, 0x00)             // function 0 has type 0
	m = append(m, sectionCode)
	m = appendU32(m, uint32(len(code)))
	return append(m, code...)
}

func TestFunctionLocalsBounded(t *testing.T) {
	tests := []struct {
		name   string
		locals uint32
		want   outcome.Outcome
		msg    string
	}{
		// Without the bound, wazero allocates every local while decoding and the process
		// dies with "out of memory": a 23-byte module must not take the host down.
		{name: "2^32-1 locals", locals: 1<<32 - 1, want: outcome.InvalidModule, msg: "more than 50000 locals"},
		{name: "just over the bound", locals: MaxFunctionLocals + 1, want: outcome.InvalidModule, msg: "more than 50000 locals"},
		// At the bound the module passes our check and reaches wazero, which refuses it for
		// having no _start: proof that the locals were not the reason.
		{name: "at the bound", locals: MaxFunctionLocals, want: outcome.InvalidModule, msg: "_start"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Run(context.Background(), moduleWithLocals(tt.locals), Config{})
			if r.Outcome != tt.want || !strings.Contains(r.Message, tt.msg) {
				t.Fatalf("got %s %q; want %s with %q", r.Outcome, r.Message, tt.want, tt.msg)
			}
		})
	}
}
