package bench

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
	"github.com/tetratelabs/wazero/sys"
)

// runner takes one sample of its series: the wall time of one run and its CPU time (-1
// where it cannot be measured).
type runner struct {
	*series
	run func() (wall, cpu time.Duration, err error)
}

// sample takes one sample; a failure of an available series fails the benchmark.
func (r *runner) sample(b *testing.B) {
	b.Helper()
	wall, cpu, err := r.run()
	if err != nil {
		b.Fatalf("%s: %v", r.name, err)
	}
	r.add(wall, cpu)
}

// probe runs r once (a warm-up: page cache, compile cache); a baseline that fails is
// marked unavailable with the reason, for the report to say so.
func (r *runner) probe() {
	if r.why != "" {
		return
	}
	if _, _, err := r.run(); err != nil {
		r.why = err.Error()
	}
}

func unavailable(key, name, why string) *runner {
	return &runner{series: &series{key: key, name: name, why: why}}
}

// execRunner forks and execs argv, waits for it, and checks that its output holds want.
func execRunner(key, name, want string, argv ...string) *runner {
	return &runner{series: &series{key: key, name: name}, run: func() (time.Duration, time.Duration, error) {
		return execTimed(want, argv...)
	}}
}

// execTimed runs argv to its end; the CPU time is the rusage of the child, which includes
// every descendant it reaped (the sandbox child of `agentbox run`, bwrap's and crun's
// container processes).
func execTimed(want string, argv ...string) (wall, cpu time.Duration, err error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err = cmd.Run()
	wall = time.Since(start)
	if err != nil {
		return wall, 0, fmt.Errorf("%s: %w\n%s", strings.Join(argv, " "), err, out.Bytes())
	}
	if !strings.Contains(out.String(), want) {
		return wall, 0, fmt.Errorf("%s: output %q does not contain %q", strings.Join(argv, " "), out.Bytes(), want)
	}
	return wall, cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime(), nil
}

// bwrapRunner is bubblewrap with every namespace it can unshare, running /bin/true:
// namespaces only, no cgroups, no seccomp, no wasm.
func bwrapRunner() *runner {
	const key, name = "bwrap", "bwrap --unshare-all"
	bwrap, err := exec.LookPath("bwrap")
	if err != nil {
		return unavailable(key, name, "bwrap is not installed (scripts/setup.sh bench installs bubblewrap)")
	}
	return execRunner(key, name, "", bwrap, "--unshare-all", "--die-with-parent", "--ro-bind", "/", "/", "/bin/true")
}

// wazeroRunner runs module in this process on bare wazero (a new runtime with WASI, the
// compiled code from a compilation cache, as a fresh process would get it): no sandbox, no
// limits, no process. Its CPU time is this process's own (rusage self) over the run.
func wazeroRunner(b *testing.B, module, want string) *runner {
	const key, name = "wazero", "wazero in-process"
	wasm, err := os.ReadFile(module)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	cache, err := wazero.NewCompilationCacheWithDir(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cache.Close(ctx) })
	return &runner{series: &series{key: key, name: name}, run: func() (time.Duration, time.Duration, error) {
		cpu0 := selfCPU()
		start := time.Now()
		rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().WithCompilationCache(cache))
		wasi_snapshot_preview1.MustInstantiate(ctx, rt)
		var out bytes.Buffer
		_, err := rt.InstantiateWithConfig(ctx, wasm, wazero.NewModuleConfig().WithStdout(&out))
		rt.Close(ctx)
		wall := time.Since(start)
		if err != nil || out.String() != want {
			return wall, 0, fmt.Errorf("wazero: %v, stdout %q", err, out.Bytes())
		}
		return wall, selfCPU() - cpu0, nil
	}}
}

// instantiateRunner runs module on bare wazero in this process from code compiled once
// beforehand: each sample only instantiates it (WASI args, stdout) and runs it to its end.
// It is the floor of a hot child's task, which has its compiled code loaded before the
// task comes.
func instantiateRunner(b *testing.B, module, want string) *runner {
	const key, name = "wazero-instantiate", "wazero in-process, compiled beforehand"
	wasm, err := os.ReadFile(module)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	rt := wazero.NewRuntime(ctx)
	b.Cleanup(func() { rt.Close(ctx) })
	wasi_snapshot_preview1.MustInstantiate(ctx, rt)
	compiled, err := rt.CompileModule(ctx, wasm)
	if err != nil {
		b.Fatalf("compile %s: %v", module, err)
	}
	return &runner{series: &series{key: key, name: name}, run: func() (time.Duration, time.Duration, error) {
		var out bytes.Buffer
		cfg := wazero.NewModuleConfig().WithName("").WithArgs("main.wasm").WithStdout(&out)
		cpu0 := selfCPU()
		start := time.Now()
		mod, err := rt.InstantiateModule(ctx, compiled, cfg)
		if mod != nil {
			mod.Close(ctx)
		}
		wall := time.Since(start)
		var exit *sys.ExitError
		if errors.As(err, &exit) && exit.ExitCode() == 0 {
			err = nil
		}
		if err != nil || !strings.Contains(out.String(), want) {
			return wall, 0, fmt.Errorf("wazero: %v, stdout %q", err, out.Bytes())
		}
		return wall, selfCPU() - cpu0, nil
	}}
}

// selfCPU is this process's user + system time so far.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// staticTrue writes the smallest static executable there is, one that only exits 0 (an
// ELF header, one program header and three instructions), and returns its path: the
// floor of a fork/exec, and the whole rootfs of the crun bundle.
func staticTrue(dir string) (string, error) {
	code, machine := trueCode()
	if code == nil {
		return "", fmt.Errorf("no static true for %s", runtime.GOARCH)
	}
	const base, ehsize, phsize = 0x400000, 64, 56
	total := uint64(ehsize + phsize + len(code))
	var f bytes.Buffer
	f.Write([]byte{0x7f, 'E', 'L', 'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	le := binary.LittleEndian
	w := func(v any) { binary.Write(&f, le, v) }
	// e_type EXEC, e_machine, e_version, e_entry, e_phoff, e_shoff, e_flags, e_ehsize,
	// e_phentsize, e_phnum, e_shentsize, e_shnum, e_shstrndx.
	w(struct {
		Type, Machine                       uint16
		Version                             uint32
		Entry, Phoff, Shoff                 uint64
		Flags                               uint32
		Ehsize, Phentsize, Phnum, Shentsize uint16
		Shnum, Shstrndx                     uint16
	}{2, machine, 1, base + ehsize + phsize, ehsize, 0, 0, ehsize, phsize, 1, 0, 0, 0})
	// One PT_LOAD of the whole file, read + execute.
	w(struct {
		Type, Flags                             uint32
		Off, Vaddr, Paddr, Filesz, Memsz, Align uint64
	}{1, 5, 0, base, base, total, total, 0x1000})
	f.Write(code)
	path := filepath.Join(dir, "true")
	return path, os.WriteFile(path, f.Bytes(), 0o755)
}

// trueCode is exit(0) for this architecture, with its ELF e_machine.
func trueCode() ([]byte, uint16) {
	switch runtime.GOARCH {
	case "amd64":
		// mov eax, 60 (exit); xor edi, edi; syscall
		return []byte{0xb8, 0x3c, 0, 0, 0, 0x31, 0xff, 0x0f, 0x05}, 62
	case "arm64":
		// mov x8, #93 (exit); mov x0, #0; svc #0
		return []byte{0xa8, 0x0b, 0x80, 0xd2, 0x00, 0x00, 0x80, 0xd2, 0x01, 0x00, 0x00, 0xd4}, 183
	}
	return nil, 0
}
