package wasm

import (
	"bytes"
	"fmt"
)

// wazero grows a table by appending delta zeroed entries to a Go slice, bounded only by the
// table's declared maximum. A table with no maximum (Go's linker emits one) lets a single
// table.grow ask the Go heap for 32 GB, which kills the whole process rather than
// failing the guest. limitTables closes that hole before wazero sees the module: every
// table gets a maximum of at most maxEntries, so a larger grow returns -1 as the spec allows.
//
// Only the table section is rewritten; every other byte is copied as is, and wazero then
// decodes and validates the result in full.
//
// The same walk checks each memory's declared minimum against the linear-memory cap: wazero
// does not expect its allocator to refuse a module's initial memory (it would panic), so a
// module that cannot even start within the cap is refused here, with the sizes named.

const (
	sectionTable  = 4
	sectionMemory = 5
	sectionCode   = 10
	// MaxFunctionLocals bounds the locals one function may declare. wazero allocates every
	// declared local while decoding, so a 23-byte body declaring 2^32-1 of them ends the
	// whole process with "out of memory" before validation. 50000 is V8's and wasmtime's limit.
	MaxFunctionLocals = 50000
	refFuncref        = 0x70
	refExternref      = 0x6f
	limitsMin         = 0x00
	limitsMinMax      = 0x01
)

var wasmHeader = []byte{0x00, 'a', 's', 'm', 0x01, 0x00, 0x00, 0x00}

// table is one table type: reference type and limits.
type table struct {
	ref      byte
	min, max uint32
	hasMax   bool
}

// vetModule returns module with every table's maximum clamped to maxEntries, and an error
// if a memory's minimum is over memLimit bytes or a declared count cannot fit in the bytes
// after it (checkCounts). Bytes that are not a wasm 1 binary are returned unchanged for
// wazero to reject with its own words.
func vetModule(module []byte, maxEntries uint32, memLimit uint64) ([]byte, error) {
	if !bytes.HasPrefix(module, wasmHeader) {
		return module, nil
	}
	// Sized once: the copy is the whole module, and growing it by appends moved it ~20 times.
	out := append(make([]byte, 0, len(module)+64), module[:len(wasmHeader)]...)
	changed := false
	for rest := module[len(wasmHeader):]; len(rest) > 0; {
		id, body, next, err := nextSection(rest)
		if err != nil {
			return nil, err
		}
		if err := checkCounts(id, body, len(next)); err != nil {
			return nil, err
		}
		if id == sectionMemory {
			if err := checkMemorySection(body, memLimit); err != nil {
				return nil, err
			}
		}
		if id == sectionCode {
			if err := checkLocals(body); err != nil {
				return nil, err
			}
		}
		if id == sectionTable {
			patched, didChange, err := limitTableSection(body, maxEntries)
			if err != nil {
				return nil, err
			}
			changed = changed || didChange
			body = patched
		}
		out = append(out, id)
		out = appendU32(out, uint32(len(body)))
		out = append(out, body...)
		rest = next
	}
	if !changed {
		return module, nil
	}
	return out, nil
}

// nextSection splits one section off b: its id, its body and what follows it.
func nextSection(b []byte) (id byte, body, rest []byte, err error) {
	id = b[0]
	size, n, err := readU32(b[1:])
	if err != nil {
		return 0, nil, nil, fmt.Errorf("%w: section %d size: %w", ErrModuleSections, id, err)
	}
	b = b[1+n:]
	if uint64(size) > uint64(len(b)) {
		return 0, nil, nil, fmt.Errorf("%w: section %d claims %d bytes, %d remain", ErrModuleSections, id, size, len(b))
	}
	return id, b[:size], b[size:], nil
}

// limitTableSection re-encodes a table section with clamped maxima.
func limitTableSection(body []byte, maxEntries uint32) ([]byte, bool, error) {
	tables, err := readTables(body)
	if err != nil {
		return nil, false, err
	}
	changed := false
	out := appendU32(nil, uint32(len(tables)))
	for i, t := range tables {
		if t.min > maxEntries {
			return nil, false, fmt.Errorf("%w: table %d declares a minimum of %d entries, limit %d", ErrTableTooLarge, i, t.min, maxEntries)
		}
		if !t.hasMax || t.max > maxEntries {
			t.max, t.hasMax, changed = maxEntries, true, true
		}
		out = append(out, t.ref, limitsMinMax)
		out = appendU32(appendU32(out, t.min), t.max)
	}
	return out, changed, nil
}

// readTables decodes a table section body: a vector of wasm 2.0 table types. Anything
// beyond wasm 2.0 (typed references, table initialisers, 64-bit or shared limits) is
// refused, since those features are not enabled anyway.
func readTables(body []byte) ([]table, error) {
	count, n, err := readU32(body)
	if err != nil {
		return nil, fmt.Errorf("%w: table count: %w", ErrModuleSections, err)
	}
	body = body[n:]
	if uint64(count) > uint64(len(body)) { // each table takes at least 3 bytes
		return nil, fmt.Errorf("%w: %d tables in %d bytes", ErrModuleSections, count, len(body))
	}
	tables := make([]table, 0, count)
	for i := range count {
		t, used, err := readTable(body)
		if err != nil {
			return nil, fmt.Errorf("%w: table %d: %w", ErrModuleSections, i, err)
		}
		tables = append(tables, t)
		body = body[used:]
	}
	if len(body) != 0 {
		return nil, fmt.Errorf("%w: %d stray bytes after the tables", ErrModuleSections, len(body))
	}
	return tables, nil
}

// readTable decodes one table type and returns how many bytes it used.
func readTable(b []byte) (table, int, error) {
	if len(b) < 2 {
		return table{}, 0, fmt.Errorf("truncated table type")
	}
	t := table{ref: b[0]}
	if t.ref != refFuncref && t.ref != refExternref {
		return table{}, 0, fmt.Errorf("reference type 0x%02x is not funcref or externref", t.ref)
	}
	flags := b[1]
	if flags != limitsMin && flags != limitsMinMax {
		return table{}, 0, fmt.Errorf("limits flags 0x%02x are not wasm 2.0 table limits", flags)
	}
	used := 2
	v, n, err := readU32(b[used:])
	if err != nil {
		return table{}, 0, fmt.Errorf("minimum: %w", err)
	}
	t.min, used = v, used+n
	if flags == limitsMinMax {
		if v, n, err = readU32(b[used:]); err != nil {
			return table{}, 0, fmt.Errorf("maximum: %w", err)
		}
		t.max, t.hasMax, used = v, true, used+n
	}
	return t, used, nil
}

// readU32 decodes an unsigned LEB128 u32 as the spec bounds it: at most 5 bytes, and the
// unused high bits of the fifth byte zero.
func readU32(b []byte) (uint32, int, error) {
	var v uint32
	for i := 0; i < 5; i++ {
		if i >= len(b) {
			return 0, 0, fmt.Errorf("truncated LEB128")
		}
		c := b[i]
		if i == 4 && c > 0x0f {
			return 0, 0, fmt.Errorf("LEB128 overflows 32 bits")
		}
		v |= uint32(c&0x7f) << (7 * i)
		if c&0x80 == 0 {
			return v, i + 1, nil
		}
	}
	return 0, 0, fmt.Errorf("LEB128 longer than 5 bytes")
}

// appendU32 appends v as unsigned LEB128.
func appendU32(b []byte, v uint32) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

// checkMemorySection refuses a memory whose declared minimum is over limit bytes.
func checkMemorySection(body []byte, limit uint64) error {
	count, n, err := readU32(body)
	if err != nil {
		return fmt.Errorf("%w: memory count: %w", ErrModuleSections, err)
	}
	body = body[n:]
	for i := range count {
		minPages, used, err := readMemoryMin(body)
		if err != nil {
			return fmt.Errorf("%w: memory %d: %w", ErrModuleSections, i, err)
		}
		if need := uint64(minPages) * pageSize; need > limit {
			return fmt.Errorf("%w: linear memory of %d bytes needed at start: limit %d bytes", ErrMemoryLimit, need, limit)
		}
		body = body[used:]
	}
	return nil
}

// checkLocals refuses a code section in which a function declares more than
// MaxFunctionLocals locals, reading only the local declarations of each body.
func checkLocals(body []byte) error {
	count, n, err := readU32(body)
	if err != nil {
		return fmt.Errorf("%w: function count: %w", ErrModuleSections, err)
	}
	body = body[n:]
	for i := range count {
		size, n, err := readU32(body)
		if err != nil || uint64(n)+uint64(size) > uint64(len(body)) {
			return fmt.Errorf("%w: function %d: truncated body", ErrModuleSections, i)
		}
		if err := checkFunctionLocals(body[n:n+int(size)], i); err != nil {
			return err
		}
		body = body[n+int(size):]
	}
	return nil
}

func checkFunctionLocals(fn []byte, index uint32) error {
	groups, n, err := readU32(fn)
	if err != nil {
		return fmt.Errorf("%w: function %d: local groups: %w", ErrModuleSections, index, err)
	}
	fn = fn[n:]
	var total uint64
	for range groups {
		k, n, err := readU32(fn)
		if err != nil || n >= len(fn) {
			return fmt.Errorf("%w: function %d: truncated locals", ErrModuleSections, index)
		}
		if total += uint64(k); total > MaxFunctionLocals {
			return fmt.Errorf("%w: function %d declares more than %d locals", ErrModuleSections, index, MaxFunctionLocals)
		}
		fn = fn[n+1:] // the count, then one value type byte
	}
	return nil
}

// readMemoryMin decodes one memory type (flags 0-3: optional maximum, optional shared) and
// returns its minimum in pages and the bytes it used. Shared memories are left for wazero
// to refuse; 64-bit memories are refused here.
func readMemoryMin(b []byte) (uint32, int, error) {
	if len(b) < 2 {
		return 0, 0, fmt.Errorf("truncated memory type")
	}
	flags := b[0]
	if flags > 0x03 {
		return 0, 0, fmt.Errorf("limits flags 0x%02x are not wasm32 memory limits", flags)
	}
	minPages, n, err := readU32(b[1:])
	if err != nil {
		return 0, 0, fmt.Errorf("minimum: %w", err)
	}
	used := 1 + n
	if flags&0x01 != 0 {
		if _, n, err = readU32(b[used:]); err != nil {
			return 0, 0, fmt.Errorf("maximum: %w", err)
		}
		used += n
	}
	return minPages, used, nil
}
