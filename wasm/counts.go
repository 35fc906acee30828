package wasm

import (
	"errors"
	"fmt"
)

// wazero's decoder sizes a slice by a vector's declared count before it reads a single entry
// (make([]wasm.Import, count), make([]byte, length), ...). A module of a few dozen bytes that
// declares 2^32-1 imports, params or name bytes therefore ends the whole process with a Go
// out-of-memory, long before wazero notices the entries are missing. checkCounts walks each
// section the way wazero's decoder does and refuses any count larger than the bytes that
// remain after it: every entry takes at least one byte, so such a module cannot be valid.
//
// The walk reads counts and skips entries just far enough to find the next count. It is not
// a validator: wazero still decodes and validates everything. Where wazero would refuse a
// byte the walk cannot step over, the walk refuses it too (fail closed), so that it never
// skips a count wazero will read.
//
// Sites this does not need to cover, checked in wazero 1.12.0: br_table label vectors and
// typed select's type vector are read by append, one entry per byte read, in both the
// validator and the compiler front end; the tag section is refused (exception handling is
// not enabled) before its vector is allocated; a non-name custom section's copy is bounded
// by the section size, which nextSection has already checked.

const (
	sectionCustom    = 0
	sectionType      = 1
	sectionImport    = 2
	sectionFunction  = 3
	sectionGlobal    = 6
	sectionExport    = 7
	sectionStart     = 8
	sectionElement   = 9
	sectionData      = 11
	sectionDataCount = 12
)

// sectionWalk steps through one section body, checking every vector count in it.
type sectionWalk struct {
	name string
	walk func(*cursor) error
}

// sectionWalks is every section wazero decodes. An id missing here is refused by wazero
// before it allocates anything.
var sectionWalks = map[byte]sectionWalk{
	sectionCustom:    {"custom", walkCustom},
	sectionType:      {"type", walkTypes},
	sectionImport:    {"import", walkImports},
	sectionFunction:  {"function", walkFunctions},
	sectionTable:     {"table", walkTables},
	sectionMemory:    {"memory", walkMemories},
	sectionGlobal:    {"global", walkGlobals},
	sectionExport:    {"export", walkExports},
	sectionStart:     {"start", walkStart},
	sectionElement:   {"element", walkElements},
	sectionCode:      {"code", walkCode},
	sectionData:      {"data", walkData},
	sectionDataCount: {"data count", walkDataCount},
}

// countError is a declared count that cannot fit in the bytes after it.
type countError struct {
	what   string
	count  uint32
	remain int
}

func (e *countError) Error() string {
	return fmt.Sprintf("%d %s declared, %d bytes remain", e.count, e.what, e.remain)
}

// checkCounts checks every count in section id's body. follow is the number of module
// bytes after the section: the data count is a count of segments still to come.
func checkCounts(id byte, body []byte, follow int) error {
	s, ok := sectionWalks[id]
	if !ok {
		return nil
	}
	c := &cursor{b: body, follow: follow}
	err := s.walk(c)
	if err == nil && len(c.b) != 0 {
		err = fmt.Errorf("%d stray bytes at the end", len(c.b))
	}
	if err == nil {
		return nil
	}
	sentinel := ErrModuleSections
	if ce := (*countError)(nil); errors.As(err, &ce) {
		sentinel = ErrVectorCount
	}
	return fmt.Errorf("%w: %s section: %w", sentinel, s.name, err)
}

// cursor reads through one section body.
type cursor struct {
	b      []byte
	follow int // module bytes after this section
}

func (c *cursor) u32(what string) (uint32, error) {
	v, n, err := readU32(c.b)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", what, err)
	}
	c.b = c.b[n:]
	return v, nil
}

// count reads a vector count (or a byte length) and refuses one over the bytes left.
func (c *cursor) count(what string) (uint32, error) { return c.countOf(what, "") }

// countOf is count for "what unit" (a name's "bytes"). The words are joined only on error:
// the walk runs on every compile and every run, over every name and vector of the module.
func (c *cursor) countOf(what, unit string) (uint32, error) {
	n, used, err := readU32(c.b)
	if err != nil {
		return 0, fmt.Errorf("%s%s count: %w", what, unit, err)
	}
	c.b = c.b[used:]
	if uint64(n) > uint64(len(c.b)) {
		return 0, &countError{what: what + unit, count: n, remain: len(c.b)}
	}
	return n, nil
}

func (c *cursor) byte(what string) (byte, error) {
	if len(c.b) == 0 {
		return 0, fmt.Errorf("truncated %s", what)
	}
	b := c.b[0]
	c.b = c.b[1:]
	return b, nil
}

func (c *cursor) skip(n uint32, what string) error {
	if uint64(n) > uint64(len(c.b)) {
		return fmt.Errorf("truncated %s", what)
	}
	c.b = c.b[n:]
	return nil
}

// leb skips one LEB128 of up to 10 bytes (signed constants and heap types); wazero checks
// its value.
func (c *cursor) leb(what string) error {
	for i := 0; i < 10 && i < len(c.b); i++ {
		if c.b[i]&0x80 == 0 {
			c.b = c.b[i+1:]
			return nil
		}
	}
	return fmt.Errorf("bad LEB128 in %s", what)
}

// name skips a length-prefixed string; wazero allocates the length before reading.
func (c *cursor) name(what string) error {
	n, err := c.countOf(what, " bytes")
	if err != nil {
		return err
	}
	return c.skip(n, what)
}

// vec reads a count and calls entry once per element, naming the element in any error.
func (c *cursor) vec(what string, entry func(i uint32) error) error {
	n, err := c.count(what)
	if err != nil {
		return err
	}
	for i := range n {
		if err := entry(i); err != nil {
			return fmt.Errorf("%s[%d]: %w", what, i, err)
		}
	}
	return nil
}

// Value and reference type bytes wazero accepts, and the two prefixes of a typed reference.
const (
	refNullable    = 0x63
	refNonNullable = 0x64
	valueExnref    = 0x69
	valueV128      = 0x7b
)

// valType skips one value type as wazero decodes it.
func (c *cursor) valType() error {
	b, err := c.byte("value type")
	if err != nil {
		return err
	}
	switch b {
	case 0x7f, 0x7e, 0x7d, 0x7c, valueV128, refFuncref, refExternref, valueExnref:
		return nil
	case refNullable, refNonNullable:
		return c.leb("heap type")
	}
	return fmt.Errorf("value type 0x%02x", b)
}

// valTypes skips a vector of value types.
func (c *cursor) valTypes(what string) error {
	return c.vec(what, func(uint32) error { return c.valType() })
}

// limits skips a limits type (flags 0-3: optional maximum, optional shared).
func (c *cursor) limits() error {
	flags, err := c.byte("limits")
	if err != nil {
		return err
	}
	if flags > 0x03 {
		return fmt.Errorf("limits flags 0x%02x", flags)
	}
	if _, err := c.u32("minimum"); err != nil {
		return err
	}
	if flags&0x01 != 0 {
		_, err = c.u32("maximum")
	}
	return err
}

// Constant expression opcodes wazero's decoder knows.
const (
	opEnd       = 0x0b
	opGlobalGet = 0x23
	opI32Const  = 0x41
	opI64Const  = 0x42
	opF32Const  = 0x43
	opF64Const  = 0x44
	opRefNull   = 0xd0
	opRefFunc   = 0xd2
	opVecPrefix = 0xfd
	opV128Const = 0x0c
)

// constExpr skips a constant expression up to and including its end.
func (c *cursor) constExpr() error {
	for {
		op, err := c.byte("constant expression")
		if err != nil {
			return err
		}
		if op == opEnd {
			return nil
		}
		if err := c.constOperand(op); err != nil {
			return err
		}
	}
}

// constOperand skips the immediates of one constant instruction.
func (c *cursor) constOperand(op byte) error {
	switch op {
	case opI32Const, opI64Const:
		return c.leb("constant")
	case opF32Const:
		return c.skip(4, "f32 constant")
	case opF64Const:
		return c.skip(8, "f64 constant")
	case opGlobalGet, opRefFunc:
		_, err := c.u32("index")
		return err
	case opRefNull:
		return c.refNullType()
	case opVecPrefix:
		if sub, err := c.byte("vector opcode"); err != nil || sub != opV128Const {
			return fmt.Errorf("vector opcode in constant expression")
		}
		return c.skip(16, "v128 constant")
	case 0x6a, 0x6b, 0x6c, 0x7c, 0x7d, 0x7e: // extended-const arithmetic: no immediates
		return nil
	}
	return fmt.Errorf("opcode 0x%02x in constant expression", op)
}

// refNullType skips ref.null's type: an abstract type byte, or a type index.
func (c *cursor) refNullType() error {
	if len(c.b) > 0 && (c.b[0] == refFuncref || c.b[0] == refExternref || c.b[0] == valueExnref) {
		c.b = c.b[1:]
		return nil
	}
	_, err := c.u32("ref.null type")
	return err
}

// tableType skips a table type as wazero decodes it: an optional initialiser prefix
// (0x40 0x00), a reference type, limits, and the initialiser if prefixed.
func (c *cursor) tableType() error {
	init := len(c.b) > 0 && c.b[0] == 0x40
	if init {
		if err := c.skip(2, "table initialiser prefix"); err != nil {
			return err
		}
	}
	if err := c.refType(); err != nil {
		return err
	}
	if err := c.limits(); err != nil {
		return err
	}
	if init {
		return c.constExpr()
	}
	return nil
}

// refType skips a reference type: one byte, or a typed reference with its heap type.
func (c *cursor) refType() error {
	b, err := c.byte("reference type")
	if err != nil {
		return err
	}
	if b == refNullable || b == refNonNullable {
		return c.leb("heap type")
	}
	return nil
}

// globalType skips a value type and its mutability byte.
func (c *cursor) globalType() error {
	if err := c.valType(); err != nil {
		return err
	}
	_, err := c.byte("mutability")
	return err
}
