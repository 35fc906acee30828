//go:build !linux

package wasm

// reserve allocates size bytes on the Go heap; only Linux gets the mapping.
func reserve(size uint64) (backing, error) {
	return heap(make([]byte, size)), nil
}
