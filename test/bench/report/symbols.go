package main

import (
	"cmp"
	"debug/elf"
	"fmt"
	"slices"
	"sort"
	"strconv"
)

// symbols names the functions of a static, non-PIE ELF binary by file offset: perf cannot
// read the symbols of a program executed from a memfd (the daemon's children run from its
// one sealed copy of agentbox-init), so `perf script` prints their frames as "[unknown]"
// with the offset into the mapped file, and the report names them from the same binary.
type symbols struct {
	loads []elf.ProgHeader // PT_LOAD segments: file offset to address
	addrs []uint64         // function start addresses, sorted
	sizes []uint64         // sizes[i] bytes from addrs[i] are names[i]'s (0: unknown)
	names []string         // names[i] starts at addrs[i]
}

func loadSymbols(path string) (*symbols, error) {
	f, err := elf.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	syms, err := f.Symbols()
	if err != nil {
		return nil, fmt.Errorf("symbols of %s: %w", path, err)
	}
	s := &symbols{}
	for _, p := range f.Progs {
		if p.Type == elf.PT_LOAD {
			s.loads = append(s.loads, p.ProgHeader)
		}
	}
	slices.SortFunc(syms, func(a, b elf.Symbol) int { return cmp.Compare(a.Value, b.Value) })
	for _, sym := range syms {
		if elf.ST_TYPE(sym.Info) == elf.STT_FUNC && sym.Value != 0 {
			s.addrs = append(s.addrs, sym.Value)
			s.sizes = append(s.sizes, sym.Size)
			s.names = append(s.names, sym.Name)
		}
	}
	if len(s.addrs) == 0 {
		return nil, fmt.Errorf("%s has no function symbols", path)
	}
	return s, nil
}

// name is the function at hex file offset off, or "" if none holds it.
func (s *symbols) name(off string) string {
	o, err := strconv.ParseUint(off, 16, 64)
	if err != nil {
		return ""
	}
	for _, p := range s.loads {
		if o >= p.Off && o < p.Off+p.Filesz {
			addr := o - p.Off + p.Vaddr
			i := sort.Search(len(s.addrs), func(i int) bool { return s.addrs[i] > addr }) - 1
			if i >= 0 && (s.sizes[i] == 0 || addr < s.addrs[i]+s.sizes[i]) {
				return s.names[i]
			}
			return ""
		}
	}
	return ""
}
