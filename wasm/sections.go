package wasm

import "fmt"

// One walk per section, each in the order wazero's decoder (internal/wasm/binary) reads
// the section, so that every count is seen before wazero allocates by it.

// walkTypes: vec(functype), where an entry may also be a rec group (0x4e) of functypes,
// which wazero decodes whatever the features.
func walkTypes(c *cursor) error {
	return c.vec("types", func(uint32) error {
		if len(c.b) > 0 && c.b[0] == 0x4e {
			c.b = c.b[1:]
			return c.vec("rec group types", func(uint32) error { return c.funcType() })
		}
		return c.funcType()
	})
}

// funcType skips 0x60 vec(valtype) vec(valtype).
func (c *cursor) funcType() error {
	form, err := c.byte("type form")
	if err != nil {
		return err
	}
	if form != 0x60 {
		return fmt.Errorf("type form 0x%02x is not a function type", form)
	}
	if err := c.valTypes("params"); err != nil {
		return err
	}
	return c.valTypes("results")
}

// walkImports: vec(module name, field name, importdesc).
func walkImports(c *cursor) error {
	return c.vec("imports", func(uint32) error {
		if err := c.name("module name"); err != nil {
			return err
		}
		if err := c.name("field name"); err != nil {
			return err
		}
		return c.importDesc()
	})
}

// importDesc skips one import's kind and type.
func (c *cursor) importDesc() error {
	kind, err := c.byte("import kind")
	if err != nil {
		return err
	}
	switch kind {
	case 0x00: // function: type index
		_, err = c.u32("type index")
	case 0x01:
		err = c.tableType()
	case 0x02:
		err = c.limits()
	case 0x03:
		err = c.globalType()
	case 0x04: // tag: attribute, type index
		if _, err = c.byte("tag attribute"); err == nil {
			_, err = c.u32("tag type")
		}
	default:
		err = fmt.Errorf("import kind 0x%02x", kind)
	}
	return err
}

// walkFunctions: vec(type index).
func walkFunctions(c *cursor) error {
	return c.vec("functions", func(uint32) error {
		_, err := c.u32("type index")
		return err
	})
}

// walkTables: vec(tabletype). readTables then applies our stricter wasm 2.0 reading.
func walkTables(c *cursor) error {
	return c.vec("tables", func(uint32) error { return c.tableType() })
}

// walkMemories: vec(limits). wazero refuses a count over 1 before allocating, but the
// walk costs nothing and keeps every count in one place.
func walkMemories(c *cursor) error {
	return c.vec("memories", func(uint32) error { return c.limits() })
}

// walkGlobals: vec(globaltype, constant expression).
func walkGlobals(c *cursor) error {
	return c.vec("globals", func(uint32) error {
		if err := c.globalType(); err != nil {
			return err
		}
		return c.constExpr()
	})
}

// walkExports: vec(name, kind, index).
func walkExports(c *cursor) error {
	return c.vec("exports", func(uint32) error {
		if err := c.name("export name"); err != nil {
			return err
		}
		if _, err := c.byte("export kind"); err != nil {
			return err
		}
		_, err := c.u32("export index")
		return err
	})
}

// walkStart: one function index, no vector; read so that stray bytes are noticed.
func walkStart(c *cursor) error {
	_, err := c.u32("start function index")
	return err
}

// walkElements: vec(element segment) in all eight wasm 2.0 encodings.
func walkElements(c *cursor) error {
	return c.vec("element segments", func(uint32) error { return c.elementSegment() })
}

// elementSegment skips one segment. The prefix's bits say: 1 passive or declarative,
// 2 explicit table index (if active) or declarative, 4 expressions instead of indices.
func (c *cursor) elementSegment() error {
	prefix, err := c.u32("element segment prefix")
	if err != nil {
		return err
	}
	if prefix > 7 {
		return fmt.Errorf("element segment prefix %d", prefix)
	}
	if err := c.elementHead(prefix); err != nil {
		return err
	}
	if prefix&4 != 0 {
		return c.vec("init expressions", func(uint32) error { return c.constExpr() })
	}
	return c.vec("init function indices", func(uint32) error {
		_, err := c.u32("function index")
		return err
	})
}

// elementHead skips what comes before a segment's init vector: table index, offset and
// element kind or reference type, as the prefix says.
func (c *cursor) elementHead(prefix uint32) error {
	active, explicit := prefix&1 == 0, prefix&2 != 0
	if active && explicit {
		if _, err := c.u32("table index"); err != nil {
			return err
		}
	}
	if active {
		if err := c.constExpr(); err != nil {
			return err
		}
	}
	if prefix == 0 || prefix == 4 { // funcref implied
		return nil
	}
	if prefix&4 != 0 {
		return c.refType()
	}
	_, err := c.byte("element kind")
	return err
}

// walkCode: vec(size, body); in each body, vec(count, valtype) of local groups. The body
// size is a length wazero allocates by; the locals' total is checkLocals' job.
func walkCode(c *cursor) error {
	return c.vec("function bodies", func(uint32) error {
		size, err := c.count("body bytes")
		if err != nil {
			return err
		}
		body := &cursor{b: c.b[:size]}
		c.b = c.b[size:]
		return body.vec("local groups", func(uint32) error {
			if _, err := body.u32("locals"); err != nil {
				return err
			}
			return body.valType()
		})
	})
}

// walkData: vec(data segment); each ends in vec(byte).
func walkData(c *cursor) error {
	return c.vec("data segments", func(uint32) error {
		prefix, err := c.u32("data segment prefix")
		if err != nil {
			return err
		}
		switch prefix {
		case 0:
			err = c.constExpr()
		case 1: // passive: no memory, no offset
		case 2:
			if _, err = c.u32("memory index"); err == nil {
				err = c.constExpr()
			}
		default:
			err = fmt.Errorf("data segment prefix %d", prefix)
		}
		if err != nil {
			return err
		}
		return c.name("init")
	})
}

// walkDataCount: the number of data segments, each at least two bytes (prefix and
// length), all still to come. An empty body means zero, as wazero reads it.
func walkDataCount(c *cursor) error {
	if len(c.b) == 0 {
		return nil
	}
	n, err := c.u32("data count")
	if err != nil {
		return err
	}
	if uint64(n) > uint64(c.follow) {
		return &countError{what: "data segments", count: n, remain: c.follow}
	}
	return nil
}

// walkCustom: the section's name; for the "name" section, its subsections too, which
// wazero decodes (and allocates by) whatever the configuration.
func walkCustom(c *cursor) error {
	n, err := c.count("custom section name bytes")
	if err != nil {
		return err
	}
	name := string(c.b[:n])
	c.b = c.b[n:]
	if name != "name" {
		c.b = nil // opaque payload, copied by wazero within the section's checked size
		return nil
	}
	for len(c.b) > 0 {
		if err := c.nameSubsection(); err != nil {
			return fmt.Errorf("%q: %w", name, err)
		}
	}
	return nil
}

// Name section subsections wazero decodes; others it skips by their size.
const (
	nameModule    = 0
	nameFunctions = 1
	nameLocals    = 2
)

// nameSubsection skips one subsection: id, size, content. Like wazero, it reads a known
// subsection by its content and uses the size only to skip an unknown one.
func (c *cursor) nameSubsection() error {
	id, err := c.byte("name subsection id")
	if err != nil {
		return err
	}
	size, err := c.u32("name subsection size")
	if err != nil {
		return err
	}
	switch id {
	case nameModule:
		return c.name("module name")
	case nameFunctions:
		return c.nameMap("function names")
	case nameLocals:
		return c.vec("local name maps", func(uint32) error {
			if _, err := c.u32("function index"); err != nil {
				return err
			}
			return c.nameMap("local names")
		})
	}
	return c.skip(size, "name subsection")
}

// nameMap skips vec(index, name).
func (c *cursor) nameMap(what string) error {
	return c.vec(what, func(uint32) error {
		if _, err := c.u32("index"); err != nil {
			return err
		}
		return c.name("name")
	})
}
