//go:build linux && cgo

package seccomp

import (
	"errors"
	"fmt"
	"io"
	"os"

	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

// Enabled reports whether this build can Compile policies (cgo and
// libseccomp). Load works either way.
const Enabled = true

// Compile turns p into a classic BPF seccomp program for the native
// architecture, ready for Validate and Load in the child.
//
// Unnamed syscalls get ENOSYS. Any other architecture token (i386 through
// int 0x80) and the x32 ABI (syscall numbers with bit 30 set, which share
// x86_64's token) kill the process: libseccomp sends x32 numbers on an
// x86_64-only filter to the bad-architecture action, and the victim test
// checks that it still does.
func Compile(p Policy) ([]byte, error) {
	if len(p.Rules) == 0 {
		return nil, fmt.Errorf("%w: empty policy", ErrNoPolicyForArch)
	}
	if err := p.Check(); err != nil {
		return nil, err
	}
	f, err := newFilter(p.Otherwise)
	if err != nil {
		return nil, err
	}
	defer f.Release()
	for _, r := range p.expanded() {
		if err := addRule(f, r, p.Otherwise); err != nil {
			return nil, err
		}
	}
	return exportBPF(f)
}

// newFilter makes a filter whose default is otherwise (ENOSYS for an
// allowlist) and whose bad-arch action kills. NO_NEW_PRIVS is Load's
// business, not the exported program's.
func newFilter(otherwise Action) (*libseccomp.ScmpFilter, error) {
	f, err := libseccomp.NewFilter(scmpAction(otherwise))
	if err != nil {
		return nil, fmt.Errorf("libseccomp new filter: %w", err)
	}
	if err := f.SetBadArchAction(libseccomp.ActKillProcess); err != nil {
		f.Release()
		return nil, fmt.Errorf("libseccomp bad-arch action KILL_PROCESS: %w", err)
	}
	return f, nil
}

// addRule adds one table entry, one libseccomp rule per syscall name.
func addRule(f *libseccomp.ScmpFilter, r Rule, otherwise Action) error {
	act := scmpAction(r.Action)
	conds, err := scmpConds(r.When)
	if err != nil {
		return fmt.Errorf("rule %v: %w", r.Names, err)
	}
	for _, name := range r.Names {
		nr, err := resolve(name)
		if err != nil {
			return err
		}
		if r.Action == otherwise {
			// Already the default; libseccomp refuses a rule that repeats
			// it. The entry stays in the table as documentation.
			continue
		}
		if len(conds) == 0 {
			err = f.AddRule(nr, act)
		} else {
			err = f.AddRuleConditional(nr, act, conds)
		}
		if err != nil {
			return fmt.Errorf("libseccomp add rule %s -> %v (%d conditions): %w", name, r.Action, len(conds), err)
		}
	}
	return nil
}

// resolve finds name on the native architecture. libseccomp returns negative
// pseudo numbers for calls that exist only elsewhere; those would add no
// filtering, so they are errors.
func resolve(name string) (libseccomp.ScmpSyscall, error) {
	nr, err := libseccomp.GetSyscallFromName(name)
	if err != nil {
		return 0, fmt.Errorf("%w: %q: %w", ErrUnknownSyscall, name, err)
	}
	if nr < 0 {
		return 0, fmt.Errorf("%w: %q does not exist on this architecture (pseudo number %d)", ErrUnknownSyscall, name, nr)
	}
	return nr, nil
}

func scmpAction(a Action) libseccomp.ScmpAction {
	switch a {
	case Allow:
		return libseccomp.ActAllow
	case EPERM:
		return libseccomp.ActErrno.SetReturnCode(int16(unix.EPERM))
	case KillProcess:
		return libseccomp.ActKillProcess
	}
	return libseccomp.ActErrno.SetReturnCode(int16(unix.ENOSYS))
}

func scmpConds(cs []Cond) ([]libseccomp.ScmpCondition, error) {
	out := make([]libseccomp.ScmpCondition, 0, len(cs))
	for _, c := range cs {
		var sc libseccomp.ScmpCondition
		var err error
		switch c.Op {
		case Equal:
			sc, err = libseccomp.MakeCondition(c.Arg, libseccomp.CompareEqual, c.Value)
		case NotEqual:
			sc, err = libseccomp.MakeCondition(c.Arg, libseccomp.CompareNotEqual, c.Value)
		case Greater:
			sc, err = libseccomp.MakeCondition(c.Arg, libseccomp.CompareGreater, c.Value)
		case Less:
			sc, err = libseccomp.MakeCondition(c.Arg, libseccomp.CompareLess, c.Value)
		case MaskedEqual:
			// libseccomp: the first operand is the mask, the second the datum.
			sc, err = libseccomp.MakeCondition(c.Arg, libseccomp.CompareMaskedEqual, c.Mask, c.Value)
		default: // NotListed never gets here: expanded spells it out
			err = fmt.Errorf("%w: unknown comparison %d", ErrInvalidPolicy, c.Op)
		}
		if err != nil {
			return nil, fmt.Errorf("condition on argument %d: %w", c.Arg, err)
		}
		out = append(out, sc)
	}
	return out, nil
}

// exportBPF gets the program bytes. ExportBPFMem needs libseccomp 2.6; older
// libraries (Debian 12 ships 2.5.4) write to an fd, so fall back to a memfd.
func exportBPF(f *libseccomp.ScmpFilter) ([]byte, error) {
	if b, err := f.ExportBPFMem(); err == nil {
		return b, nil
	} else if !errors.Is(err, unix.EOPNOTSUPP) && !errors.Is(err, unix.ENOTSUP) {
		return nil, fmt.Errorf("libseccomp export BPF to memory: %w", err)
	}
	return exportBPFFile(f)
}

func exportBPFFile(f *libseccomp.ScmpFilter) ([]byte, error) {
	fd, err := unix.MemfdCreate("agentbox-seccomp-bpf", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("memfd_create for BPF export: %w", err)
	}
	file := os.NewFile(uintptr(fd), "agentbox-seccomp-bpf")
	defer file.Close()
	if err := f.ExportBPF(file); err != nil {
		return nil, fmt.Errorf("libseccomp export BPF to memfd: %w", err)
	}
	if _, err := file.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("rewind BPF memfd: %w", err)
	}
	b, err := io.ReadAll(file)
	if err != nil {
		return nil, fmt.Errorf("read BPF memfd: %w", err)
	}
	return b, nil
}
