//go:build !linux

package seccomp

// Load always fails outside Linux with ErrUnsupportedOS.
func Load(bpf []byte) error {
	if err := Validate(bpf); err != nil {
		return err
	}
	return ErrUnsupportedOS
}

// Stack always fails outside Linux with ErrUnsupportedOS.
func Stack(bpf []byte) error { return Load(bpf) }
