package seccomp

import "fmt"

const (
	// insnSize is sizeof(struct sock_filter): u16 code, u8 jt, u8 jf, u32 k.
	insnSize = 8
	// maxInsns is the kernel's BPF_MAXINSNS for one classic filter.
	maxInsns = 4096
)

// Validate checks that bpf can be a classic BPF seccomp program before it is
// handed to the kernel: not empty, a whole number of 8-byte instructions, at
// most BPF_MAXINSNS (4096) of them. The bytes come through the spawn spec, so
// a truncated or corrupted spec fails here with a clear message instead of as
// a bare EINVAL from seccomp(2). The kernel's own verifier does the rest.
func Validate(bpf []byte) error {
	switch n := len(bpf); {
	case n == 0:
		return fmt.Errorf("%w: empty program", ErrInvalidBPF)
	case n%insnSize != 0:
		return fmt.Errorf("%w: length %d is not a multiple of %d", ErrInvalidBPF, n, insnSize)
	case n/insnSize > maxInsns:
		return fmt.Errorf("%w: %d instructions, more than BPF_MAXINSNS %d", ErrInvalidBPF, n/insnSize, maxInsns)
	}
	return nil
}
