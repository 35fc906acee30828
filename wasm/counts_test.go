package wasm

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/agentbox/agentbox/outcome"
)

// huge is 2^32-1 as a LEB128: the count that made wazero ask the Go heap for gigabytes.
var huge = []byte{0xff, 0xff, 0xff, 0xff, 0x0f}

// cat joins byte fragments.
func cat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

// bs is a shorthand for a byte fragment.
func bs(v ...byte) []byte { return v }

// i32Zero is the constant expression (i32.const 0).
var i32Zero = bs(opI32Const, 0x00, opEnd)

// nameSection builds a "name" custom section around subsection bytes.
func nameSection(sub ...byte) []byte {
	return section(sectionCustom, cat(bs(4, 'n', 'a', 'm', 'e'), sub)...)
}

// normalModule uses every section kind the walk knows, with valid contents, and runs ok.
func normalModule() []byte {
	return module(
		section(sectionType, 1, 0x60, 0, 0),
		section(sectionFunction, 1, 0),
		section(sectionTable, 1, refFuncref, limitsMin, 1),
		section(sectionMemory, 1, limitsMin, 1),
		section(sectionGlobal, cat(bs(1, 0x7f, 0x00), i32Zero)...),
		section(sectionExport, cat(bs(2, 6), []byte("_start"), bs(0x00, 0), bs(6), []byte("memory"), bs(0x02, 0))...),
		section(sectionElement, cat(bs(1, 0), i32Zero, bs(1, 0))...),
		section(sectionDataCount, 1),
		section(sectionCode, 1, 4, 1, 1, 0x7f, opEnd),
		section(sectionData, cat(bs(1, 0), i32Zero, bs(2, 'h', 'i'))...),
		nameSection(nameFunctions, 4, 1, 0, 1, 's', nameLocals, 5, 1, 0, 1, 0, 0),
	)
}

func TestDeclaredCountBombs(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		want outcome.Outcome
		msg  string // fragment of Result.Message
	}{
		{name: "control: every section, valid", in: normalModule(), want: outcome.OK},
		{name: "type: functypes", in: module(section(sectionType, huge...)), msg: "type section: 4294967295 types declared"},
		{name: "type: params", in: module(section(sectionType, cat(bs(1, 0x60), huge)...)), msg: "type section: types[0]: 4294967295 params declared"},
		{name: "type: results", in: module(section(sectionType, cat(bs(1, 0x60, 0), huge)...)), msg: "4294967295 results declared"},
		{name: "type: rec group", in: module(section(sectionType, cat(bs(1, 0x4e), huge)...)), msg: "4294967295 rec group types declared"},
		{name: "import: imports", in: module(section(sectionImport, huge...)), msg: "import section: 4294967295 imports declared"},
		{name: "import: module name", in: module(section(sectionImport, cat(bs(1), huge)...)), msg: "4294967295 module name bytes declared"},
		{name: "import: field name", in: module(section(sectionImport, cat(bs(1, 0), huge)...)), msg: "4294967295 field name bytes declared"},
		{name: "function: type indices", in: module(section(sectionFunction, huge...)), msg: "function section: 4294967295 functions declared"},
		{name: "table: tables", in: module(section(sectionTable, huge...)), msg: "table section: 4294967295 tables declared"},
		{name: "memory: memories", in: module(section(sectionMemory, huge...)), msg: "memory section: 4294967295 memories declared"},
		{name: "global: globals", in: module(section(sectionGlobal, huge...)), msg: "global section: 4294967295 globals declared"},
		{name: "export: exports", in: module(section(sectionExport, huge...)), msg: "export section: 4294967295 exports declared"},
		{name: "export: name", in: module(section(sectionExport, cat(bs(1), huge)...)), msg: "4294967295 export name bytes declared"},
		// The start section holds no vector; a huge index is wazero's to refuse.
		{name: "start: huge function index", in: module(section(sectionStart, huge...)), msg: "invalid module"},
		{name: "element: segments", in: module(section(sectionElement, huge...)), msg: "element section: 4294967295 element segments declared"},
		{name: "element 0: active, indices", in: module(section(sectionElement, cat(bs(1, 0), i32Zero, huge)...)), msg: "4294967295 init function indices declared"},
		{name: "element 1: passive, indices", in: module(section(sectionElement, cat(bs(1, 1, 0x00), huge)...)), msg: "4294967295 init function indices declared"},
		{name: "element 2: active with table, indices", in: module(section(sectionElement, cat(bs(1, 2, 0), i32Zero, bs(0x00), huge)...)), msg: "4294967295 init function indices declared"},
		{name: "element 3: declarative, indices", in: module(section(sectionElement, cat(bs(1, 3, 0x00), huge)...)), msg: "4294967295 init function indices declared"},
		{name: "element 4: active, expressions", in: module(section(sectionElement, cat(bs(1, 4), i32Zero, huge)...)), msg: "4294967295 init expressions declared"},
		{name: "element 5: passive, expressions", in: module(section(sectionElement, cat(bs(1, 5, refFuncref), huge)...)), msg: "4294967295 init expressions declared"},
		{name: "element 6: active with table, expressions", in: module(section(sectionElement, cat(bs(1, 6, 0), i32Zero, bs(refFuncref), huge)...)), msg: "4294967295 init expressions declared"},
		{name: "element 7: declarative, expressions", in: module(section(sectionElement, cat(bs(1, 7, refFuncref), huge)...)), msg: "4294967295 init expressions declared"},
		{name: "code: bodies", in: module(section(sectionCode, huge...)), msg: "code section: 4294967295 function bodies declared"},
		{name: "code: body size", in: module(section(sectionCode, cat(bs(1), huge)...)), msg: "4294967295 body bytes declared"},
		{name: "code: local groups", in: module(section(sectionCode, cat(bs(1, 6), huge, bs(opEnd))...)), msg: "4294967295 local groups declared, 1 bytes remain"},
		{name: "data: segments", in: module(section(sectionData, huge...)), msg: "data section: 4294967295 data segments declared"},
		{name: "data: init bytes", in: module(section(sectionData, cat(bs(1, 1), huge)...)), msg: "4294967295 init bytes declared"},
		{name: "data count over the data that follows", in: module(section(sectionDataCount, 0x80, 0x80, 0x04), section(sectionData, 1, 1, 0)),
			msg: "data count section: 65536 data segments declared, 5 bytes remain"},
		{name: "custom: section name", in: module(section(sectionCustom, huge...)), msg: "custom section: 4294967295 custom section name bytes declared"},
		{name: "name: module name", in: module(nameSection(cat(bs(nameModule, 5), huge)...)), msg: "4294967295 module name bytes declared"},
		{name: "name: function names", in: module(nameSection(cat(bs(nameFunctions, 5), huge)...)), msg: `custom section: "name": 4294967295 function names declared`},
		{name: "name: one function's name", in: module(nameSection(cat(bs(nameFunctions, 7, 1, 0), huge)...)), msg: "4294967295 name bytes declared"},
		{name: "name: local name maps", in: module(nameSection(cat(bs(nameLocals, 5), huge)...)), msg: "4294967295 local name maps declared"},
		{name: "name: one function's locals", in: module(nameSection(cat(bs(nameLocals, 7, 1, 0), huge)...)), msg: "4294967295 local names declared"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := tt.want
			if want == "" {
				want = outcome.InvalidModule
			}
			got := Run(context.Background(), tt.in, Config{})
			if got.Outcome != want || !strings.Contains(got.Message, tt.msg) {
				t.Fatalf("got %s %q; want %s with %q", got.Outcome, got.Message, want, tt.msg)
			}
		})
	}
}

// TestCheckCountsSentinels: a count is reported as ErrVectorCount, a walk that cannot
// continue as ErrModuleSections, both naming the section.
func TestCheckCountsSentinels(t *testing.T) {
	tests := []struct {
		name string
		id   byte
		body []byte
		is   error
		msg  string
	}{
		{name: "huge count", id: sectionFunction, body: huge, is: ErrVectorCount, msg: "function section"},
		{name: "truncated entry", id: sectionExport, body: bs(1, 1, 'x'), is: ErrModuleSections, msg: "export section: exports[0]: truncated export kind"},
		{name: "unknown constant opcode", id: sectionGlobal, body: bs(1, 0x7f, 0, 0x00), is: ErrModuleSections, msg: "opcode 0x00 in constant expression"},
		{name: "stray bytes", id: sectionFunction, body: bs(1, 0, 0), is: ErrModuleSections, msg: "1 stray bytes"},
		{name: "unknown section is left to wazero", id: 42, body: huge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkCounts(tt.id, tt.body, 0)
			if !errors.Is(err, tt.is) || (err != nil && !strings.Contains(err.Error(), tt.msg)) {
				t.Fatalf("error %v; want %v with %q", err, tt.is, tt.msg)
			}
		})
	}
}
