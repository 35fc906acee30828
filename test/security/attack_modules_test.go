//go:build linux

package security

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// Malicious modules. Small ones are WAT under testdata/ (built by scripts/build-wat.sh); the
// oversized and malformed ones are generated here at test time, so the repository does not
// carry megabytes of hostile bytes and each generator says what it builds.

// suiteModule reads a module built from testdata/*.wat of this suite.
func suiteModule(name string) func(t testing.TB) []byte {
	return fileModule(filepath.Join("testdata", name))
}

// sharedModule reads one of the project's test modules (testdata/modules, one per outcome).
func sharedModule(name string) func(t testing.TB) []byte {
	return fileModule(filepath.Join("..", "..", "testdata", "modules", name))
}

func fileModule(path string) func(t testing.TB) []byte {
	return func(t testing.TB) []byte {
		t.Helper()
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("test module: %v", err)
		}
		return b
	}
}

// generated wraps a generator that needs no testing.TB.
func generated(gen func() []byte) func(t testing.TB) []byte {
	return func(testing.TB) []byte { return gen() }
}

// uleb is unsigned LEB128, the encoding of every count and index in a wasm binary.
func uleb(v uint64) []byte {
	var out []byte
	for {
		b := byte(v & 0x7f)
		v >>= 7
		if v != 0 {
			out = append(out, b|0x80)
			continue
		}
		return append(out, b)
	}
}

// sleb is signed LEB128, the encoding of i32.const immediates.
func sleb(v int64) []byte {
	var out []byte
	for {
		b := byte(v & 0x7f)
		v >>= 7
		if (v == 0 && b&0x40 == 0) || (v == -1 && b&0x40 != 0) {
			return append(out, b)
		}
		out = append(out, b|0x80)
	}
}

// section frames one section: id, byte length, body.
func section(id byte, body []byte) []byte {
	return append(append([]byte{id}, uleb(uint64(len(body)))...), body...)
}

// vec frames a vector: element count, then the elements as given.
func vec(n int, elems ...[]byte) []byte {
	return append(uleb(uint64(n)), bytes.Join(elems, nil)...)
}

func name(s string) []byte { return append(uleb(uint64(len(s))), s...) }

// wasmModule joins the header and sections.
func wasmModule(sections ...[]byte) []byte {
	return append([]byte{0x00, 'a', 's', 'm', 0x01, 0x00, 0x00, 0x00}, bytes.Join(sections, nil)...)
}

// Section ids and the few opcodes the generators emit.
const (
	secType     = 1
	secImport   = 2
	secFunction = 3
	secMemory   = 5
	secExport   = 7
	secCode     = 10

	opBlock    = 0x02
	opEnd      = 0x0b
	opCall     = 0x10
	opI32Const = 0x41
	blockEmpty = 0x40
)

// typeVoid is a type section with () -> () as type 0 and (i32) -> () as type 1.
var typeVoid = section(secType, vec(2, []byte{0x60, 0, 0}, []byte{0x60, 1, 0x7f, 0}))

// exportStart exports function index i as _start.
func exportStart(i int) []byte {
	return section(secExport, vec(1, name("_start"), []byte{0x00}, uleb(uint64(i))))
}

// manyFunctions is a module of n empty functions (each body: no locals, end), the first
// exported as _start: it tests that compile time and memory stay bounded for a module that
// is cheap to send and expensive to compile.
func manyFunctions(n int) []byte {
	funcs := bytes.Repeat([]byte{0x00}, n) // every function has type 0
	bodies := bytes.Repeat([]byte{0x02, 0x00, opEnd}, n)
	return wasmModule(typeVoid,
		section(secFunction, append(uleb(uint64(n)), funcs...)),
		exportStart(0),
		section(secCode, append(uleb(uint64(n)), bodies...)))
}

// deepNesting is one function whose body opens depth nested empty blocks and closes them:
// a recursive validator or compiler would blow its own stack on it.
func deepNesting(depth int) []byte {
	code := append([]byte{0x00}, bytes.Repeat([]byte{opBlock, blockEmpty}, depth)...)
	code = append(code, bytes.Repeat([]byte{opEnd}, depth)...)
	code = append(code, opEnd)
	body := append(uleb(uint64(len(code))), code...)
	return wasmModule(typeVoid,
		section(secFunction, vec(1, []byte{0x00})),
		exportStart(0),
		section(secCode, vec(1, body)))
}

// hugeLocals declares 2^32-1 i32 locals in one function: an engine that allocated them
// eagerly would ask for 16 GiB.
func hugeLocals() []byte {
	code := append([]byte{0x01}, uleb(0xffffffff)...) // one local declaration group
	code = append(code, 0x7f, opEnd)
	body := append(uleb(uint64(len(code))), code...)
	return wasmModule(typeVoid,
		section(secFunction, vec(1, []byte{0x00})),
		exportStart(0),
		section(secCode, vec(1, body)))
}

// procExit calls wasi proc_exit(code) from _start: the guest choosing wazero's reserved
// exit codes (0xffffffff "context cancelled", 0xefbeadde "deadline exceeded").
func procExit(code uint32) []byte {
	imp := section(secImport, vec(1, name("wasi_snapshot_preview1"), name("proc_exit"), []byte{0x00, 0x01}))
	code32 := int64(int32(code))
	instr := append([]byte{0x00, opI32Const}, sleb(code32)...)
	instr = append(instr, opCall, 0x00, opEnd)
	body := append(uleb(uint64(len(instr))), instr...)
	return wasmModule(typeVoid, imp,
		section(secFunction, vec(1, []byte{0x00})),
		section(secMemory, vec(1, []byte{0x00, 0x01})),
		section(secExport, vec(2, name("_start"), []byte{0x00, 0x01}, name("memory"), []byte{0x02, 0x00})),
		section(secCode, vec(1, body)))
}

// Malformed binaries: each breaks the format in one place.
var (
	// truncatedModule cuts a valid module in the middle of its code section.
	truncatedModule = func() []byte { m := manyFunctions(4); return m[:len(m)-3] }
	// sectionPastEnd claims a 4 GiB type section in a 20-byte file.
	sectionPastEnd = func() []byte { return wasmModule([]byte{secType}, uleb(0xfffffff0), []byte{0x60, 0, 0}) }
	// badVersion is the wasm magic with version 0xffffffff.
	badVersion = func() []byte { return []byte{0x00, 'a', 's', 'm', 0xff, 0xff, 0xff, 0xff} }
	// elfBytes is not wasm at all: an ELF header, as if a native binary were submitted.
	elfBytes = func() []byte { return append([]byte{0x7f, 'E', 'L', 'F', 2, 1, 1}, make([]byte, 57)...) }
)
