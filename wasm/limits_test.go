package wasm

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// section encodes one module section.
func section(id byte, body ...byte) []byte {
	return append(appendU32([]byte{id}, uint32(len(body))), body...)
}

// module joins the header and sections.
func module(sections ...[]byte) []byte {
	return bytes.Join(append([][]byte{wasmHeader}, sections...), nil)
}

func TestVetModule(t *testing.T) {
	lim := appendU32(nil, MaxTableEntries)
	custom := section(0, 3, 'a', 'b', 'c', 0xff)
	tests := []struct {
		name   string
		in     []byte
		want   []byte // nil: same as in
		memCap uint64
		err    error
	}{
		{name: "not wasm is left to wazero", in: []byte("garbage")},
		{name: "no tables", in: module(custom)},
		{name: "table without max gets the limit", in: module(section(4, 1, refFuncref, 0x00, 0), custom),
			want: module(section(4, append([]byte{1, refFuncref, 0x01, 0}, lim...)...), custom)},
		{name: "table within the limit is untouched", in: module(section(4, 1, refFuncref, 0x01, 1, 10))},
		{name: "huge max is clamped", in: module(section(4, 1, refExternref, 0x01, 0, 0x80, 0x80, 0x80, 0x80, 0x0f)),
			want: module(section(4, append([]byte{1, refExternref, 0x01, 0}, lim...)...))},
		{name: "two tables, one clamped", in: module(section(4, 2, refFuncref, 0x01, 2, 2, refFuncref, 0x00, 5)),
			want: module(section(4, append([]byte{2, refFuncref, 0x01, 2, 2, refFuncref, 0x01, 5}, lim...)...))},
		{name: "minimum over the limit", in: module(section(4, 1, refFuncref, 0x00, 0x80, 0x80, 0x80, 0x10)), err: ErrTableTooLarge},
		{name: "typed reference table refused", in: module(section(4, 1, 0x64, 0x70, 0x00, 0)), err: ErrModuleSections},
		{name: "64-bit table limits refused", in: module(section(4, 1, refFuncref, 0x04, 0)), err: ErrModuleSections},
		{name: "stray bytes in table section", in: module(section(4, 1, refFuncref, 0x00, 0, 0)), err: ErrModuleSections},
		{name: "section longer than the module", in: append(wasmHeader[:8:8], 4, 10, 1), err: ErrModuleSections},
		{name: "overlong LEB128", in: module(section(4, 1, refFuncref, 0x00, 0x80, 0x80, 0x80, 0x80, 0x80, 0)), err: ErrModuleSections},
		{name: "memory minimum within the cap", in: module(section(5, 1, 0x00, 2)), memCap: 2 * pageSize},
		{name: "memory minimum over the cap", in: module(section(5, 1, 0x01, 3, 4)), memCap: 2 * pageSize, err: ErrMemoryLimit},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			memCap := tt.memCap
			if memCap == 0 {
				memCap = MaxMemoryBytes
			}
			got, err := vetModule(tt.in, MaxTableEntries, memCap)
			if !errors.Is(err, tt.err) {
				t.Fatalf("error %v, want %v", err, tt.err)
			}
			if tt.err != nil {
				return
			}
			want := tt.want
			if want == nil {
				want = tt.in
			}
			if !bytes.Equal(got, want) {
				t.Errorf("got  % x\nwant % x", got, want)
			}
		})
	}
}

// FuzzVetModule: vetModule never panics on any bytes, and what it returns needs no
// further clamping (every table now has a maximum within the limit).
func FuzzVetModule(f *testing.F) {
	paths, _ := filepath.Glob(filepath.Join(modulesDir, "*.wasm"))
	for _, p := range paths {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add(module(section(4, 1, refFuncref, 0x00, 0)))
	f.Fuzz(func(t *testing.T, in []byte) {
		out, err := vetModule(in, 1000, MaxMemoryBytes)
		if err != nil {
			return
		}
		again, err := vetModule(out, 1000, MaxMemoryBytes)
		if err != nil {
			t.Fatalf("vetted output no longer vets: %v", err)
		}
		if !bytes.Equal(again, out) {
			t.Fatalf("vetted output changed on a second pass")
		}
	})
}
