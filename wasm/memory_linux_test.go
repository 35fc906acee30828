package wasm

import (
	"bytes"
	"os"
	"strconv"
	"testing"
)

// rss reads this process's resident set size from /proc/self/status.
func rss(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range bytes.Split(b, []byte("\n")) {
		if rest, ok := bytes.CutPrefix(line, []byte("VmRSS:")); ok {
			kb, err := strconv.ParseInt(string(bytes.TrimSpace(bytes.TrimSuffix(rest, []byte("kB")))), 10, 64)
			if err != nil {
				t.Fatalf("parsing VmRSS %q: %v", rest, err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmRSS in /proc/self/status")
	return 0
}

// TestMemoryCostsOnlyTouchedPages: reserving and granting 1 GiB costs no RSS; touching
// 64 MiB of it costs about 64 MiB; releasing gives it back.
func TestMemoryCostsOnlyTouchedPages(t *testing.T) {
	const (
		size    = 1 << 30
		touched = 64 << 20
		slack   = 16 << 20
	)
	m := newMemoryCap(size)
	before := rss(t)
	buf := m.Allocate(0, MaxMemoryBytes).Reallocate(size)
	if len(buf) != size {
		t.Fatalf("granted %d bytes, want %d", len(buf), size)
	}
	if grew := rss(t) - before; grew > slack {
		t.Fatalf("granting 1 GiB untouched raised RSS by %d bytes, want under %d", grew, slack)
	}
	for i := 0; i < touched; i += 4096 {
		buf[i] = 1
	}
	if grew := rss(t) - before; grew < touched-slack {
		t.Fatalf("touching %d bytes raised RSS by only %d: the measurement is not working", touched, grew)
	}
	if err := m.release(); err != nil {
		t.Fatal(err)
	}
	if grew := rss(t) - before; grew > slack {
		t.Errorf("after release RSS is still %d bytes above the start", grew)
	}
}
