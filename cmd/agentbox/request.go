package main

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	"github.com/agentbox/agentbox/internal/units"
	"github.com/agentbox/agentbox/sandbox"
	"github.com/agentbox/agentbox/verdict"
)

// request is one `agentbox run`, checked: the sandbox's configuration and the task.
type request struct {
	config sandbox.Config
	spec   sandbox.Spec
	close  func() // closes the --stdin file
}

// request turns the flags and positional arguments into a checked request. Each step
// names the flag or argument it refuses, and the cheap checks come before reading the
// module.
func (f runFlags) request(args []string) (request, error) {
	r := request{close: func() {}}
	modulePath, guestArgs, err := splitArgs(args)
	if err != nil {
		return r, err
	}
	if r.config, err = f.config(); err != nil {
		return r, err
	}
	if r.spec.Limits, err = f.limits(); err != nil {
		return r, err
	}
	r.spec.Args = append([]string{filepath.Base(modulePath)}, guestArgs...)
	if r.spec.Env, err = checkEnv(f.env); err != nil {
		return r, err
	}
	if r.spec.Dirs, err = parseDirs(f.dirs); err != nil {
		return r, err
	}
	if err := checkRequestSize(r.spec); err != nil {
		return r, err
	}
	if r.spec.Module, err = readModule(modulePath, r.config.MaxModuleBytes); err != nil {
		return r, err
	}
	r.spec.Stdin, r.close, err = openStdin(f.stdin)
	return r, err
}

// splitArgs separates MODULE from the guest's arguments. pflag keeps a "--" that follows
// MODULE (it stops parsing at MODULE): drop it, so that "run m.wasm -- a" passes a.
func splitArgs(args []string) (module string, guest []string, err error) {
	if len(args) == 0 || args[0] == "" {
		return "", nil, verdict.Errorf(verdict.InvalidArgument, "MODULE", "", "missing MODULE: agentbox run [flags] MODULE.wasm [ARGS...]")
	}
	guest = args[1:]
	if len(guest) > 0 && guest[0] == "--" {
		guest = guest[1:]
	}
	return args[0], guest, nil
}

// config is the sandbox's configuration: cache and compile budget.
func (f runFlags) config() (sandbox.Config, error) {
	c := sandbox.Config{CacheDir: f.cacheDir, Compile: sandbox.CompileLimits{Timeout: f.compileTimeout},
		AllowSpeculation: f.allowSpeculation}
	var err error
	if c.CacheMaxBytes, err = parseSize("--cache-max-size", f.cacheMaxSize, sandbox.DefaultCacheMaxBytes); err != nil {
		return c, err
	}
	if c.Compile.MemoryBytes, err = parseSize("--compile-memory", f.compileMemory, sandbox.DefaultCompileMemory); err != nil {
		return c, err
	}
	if c.MaxModuleBytes, err = parseSize("--max-module-size", f.maxModuleSize, sandbox.DefaultMaxModuleBytes); err != nil {
		return c, err
	}
	if f.compileTimeout <= 0 {
		return c, badFlag("--compile-timeout", f.compileTimeout.String(), "must be more than 0")
	}
	return c, nil
}

// limits are the guest's limits. Zero is refused everywhere: in sandbox.Limits it means
// "the default", which a user typing 0 never means.
func (f runFlags) limits() (sandbox.Limits, error) {
	mem, err := parseSize("--memory", f.memory, sandbox.DefaultMemory)
	if err != nil {
		return sandbox.Limits{}, err
	}
	out, err := parseSize("--output-limit", f.outputLimit, sandbox.DefaultOutputLimit)
	if err != nil {
		return sandbox.Limits{}, err
	}
	hostCPUs := runtime.NumCPU()
	checks := []struct {
		bad         bool
		flag, value string
		want        string
	}{
		{f.cpus <= 0, "--cpus", fmtFloat(f.cpus), "must be more than 0"},
		{f.cpus > float64(hostCPUs), "--cpus", fmtFloat(f.cpus), fmt.Sprintf("more than the %d CPUs of this host", hostCPUs)},
		{f.pids <= 0, "--pids", strconv.FormatInt(f.pids, 10), "must be more than 0"},
		{f.timeout <= 0, "--timeout", f.timeout.String(), "must be more than 0"},
		{f.cpuTime < 0, "--cpu-time", f.cpuTime.String(), "must not be negative"},
		{f.clockResolution <= 0, "--clock-resolution", f.clockResolution.String(), "must be more than 0"},
	}
	for _, c := range checks {
		if c.bad {
			return sandbox.Limits{}, badFlag(c.flag, c.value, c.want)
		}
	}
	return sandbox.Limits{MemoryBytes: mem, CPUs: f.cpus, Pids: f.pids, Timeout: f.timeout, CPUTime: f.cpuTime,
		OutputBytes: out, ClockResolution: f.clockResolution}, nil
}

func badFlag(flag, value, want string) error {
	return verdict.Errorf(verdict.InvalidArgument, flag, value, "%s %s: %s", flag, value, want)
}

func fmtFloat(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

func checkEnv(env []string) ([]string, error) {
	for _, kv := range env {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
			return nil, verdict.Errorf(verdict.InvalidArgument, "--env", kv, "--env %q: want KEY=VALUE", kv)
		}
	}
	return env, nil
}

// checkRequestSize refuses, as the caller's error, a request past the sandbox's bounds
// (sandbox.Run would refuse it too, but could not name the flag).
func checkRequestSize(s sandbox.Spec) error {
	total := 0 // counted as sandbox.Run counts: each string and its NUL
	for _, a := range s.Args {
		total += len(a) + 1
	}
	for _, kv := range s.Env {
		total += len(kv) + 1
	}
	switch {
	case len(s.Args) > sandbox.MaxArgs:
		return verdict.Errorf(verdict.TooLarge, "ARGS", strconv.Itoa(len(s.Args)-1),
			"%d arguments for the guest: at most %d, the module's name included", len(s.Args)-1, sandbox.MaxArgs)
	case len(s.Env) > sandbox.MaxArgs:
		return verdict.Errorf(verdict.TooLarge, "--env", strconv.Itoa(len(s.Env)), "%d --env entries: at most %d", len(s.Env), sandbox.MaxArgs)
	case total > sandbox.MaxArgEnvBytes:
		return verdict.Errorf(verdict.TooLarge, "ARGS", strconv.Itoa(total),
			"the guest's arguments and environment take %d bytes: at most %d together", total, sandbox.MaxArgEnvBytes)
	case len(s.Dirs) > sandbox.MaxDirs:
		return verdict.Errorf(verdict.TooLarge, "--dir", strconv.Itoa(len(s.Dirs)), "%d --dir preopens: at most %d", len(s.Dirs), sandbox.MaxDirs)
	}
	return nil
}

// parseDirs parses every --dir and refuses two at the same guest path.
func parseDirs(flags []string) ([]sandbox.Dir, error) {
	var dirs []sandbox.Dir
	seen := map[string]string{} // guest path -> the --dir value that took it
	for _, v := range flags {
		d, err := parseDir(v)
		if err != nil {
			return nil, err
		}
		if prev, dup := seen[d.GuestPath]; dup {
			return nil, verdict.Errorf(verdict.InvalidArgument, "--dir", v, "--dir %s: guest path %s is already taken by --dir %s", v, d.GuestPath, prev)
		}
		seen[d.GuestPath] = v
		dirs = append(dirs, d)
	}
	return dirs, nil
}

// parseDir parses HOST[:GUEST][:ro|:rw]. GUEST defaults to HOST made absolute and clean,
// and must itself be absolute and clean: the guest resolves paths against it as written.
func parseDir(v string) (sandbox.Dir, error) {
	parts := strings.Split(v, ":")
	var d sandbox.Dir
	switch last := parts[len(parts)-1]; {
	case len(parts) > 1 && last == "ro":
		d.ReadOnly, parts = true, parts[:len(parts)-1]
	case len(parts) > 1 && last == "rw":
		parts = parts[:len(parts)-1]
	}
	if len(parts) > 2 || parts[0] == "" {
		return d, verdict.Errorf(verdict.InvalidArgument, "--dir", v, "--dir %q: want HOST[:GUEST][:ro|:rw]", v)
	}
	host, err := filepath.Abs(parts[0])
	if err != nil {
		return d, verdict.Errorf(verdict.InvalidArgument, "--dir", v, "--dir %q: %w", v, err)
	}
	d.HostPath, d.GuestPath = host, host
	if len(parts) == 2 && parts[1] != "" {
		d.GuestPath = parts[1]
	}
	if !path.IsAbs(d.GuestPath) || path.Clean(d.GuestPath) != d.GuestPath {
		return d, verdict.Errorf(verdict.InvalidArgument, "--dir", v, "--dir %s: guest path %q must be absolute and clean, e.g. %s", v, d.GuestPath, path.Clean("/"+d.GuestPath))
	}
	if st, err := os.Stat(host); err != nil {
		return d, verdict.Errorf(verdict.InvalidArgument, "--dir", v, "--dir %s: %w", v, err)
	} else if !st.IsDir() {
		return d, verdict.Errorf(verdict.InvalidArgument, "--dir", v, "--dir %s: %s is not a directory", v, host)
	}
	return d, nil
}

// readModule reads the module at p, refusing anything but a regular file of at most max
// bytes before allocating for it: /dev/zero or a FIFO must fail at once, not fill memory
// or block.
func readModule(p string, max uint64) ([]byte, error) {
	// O_NONBLOCK: opening a FIFO would otherwise wait for a writer.
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, verdict.Errorf(verdict.InvalidArgument, "MODULE", p, "cannot read module %s: %w", p, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, verdict.Errorf(verdict.InvalidArgument, "MODULE", p, "cannot read module %s: %w", p, err)
	}
	if !st.Mode().IsRegular() {
		return nil, verdict.Errorf(verdict.InvalidArgument, "MODULE", p, "module %s is %s, not a regular file: pass a .wasm file", p, fileKind(st.Mode()))
	}
	if uint64(st.Size()) > max {
		return nil, tooLargeModule(p, uint64(st.Size()), max)
	}
	var buf bytes.Buffer
	buf.Grow(int(st.Size()) + 1)
	if _, err := buf.ReadFrom(io.LimitReader(f, int64(max)+1)); err != nil {
		return nil, verdict.Errorf(verdict.InvalidArgument, "MODULE", p, "cannot read module %s: %w", p, err)
	}
	if uint64(buf.Len()) > max { // it grew while we read it
		return nil, tooLargeModule(p, uint64(buf.Len()), max)
	}
	return buf.Bytes(), nil
}

func tooLargeModule(p string, size, max uint64) error {
	return verdict.Errorf(verdict.TooLarge, "MODULE", p, "module %s is %d bytes, more than --max-module-size %s",
		p, size, units.FormatSize(max))
}

// fileKind names what a non-regular file is, for the error that refuses it.
func fileKind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case m&fs.ModeSocket != 0:
		return "a socket"
	}
	return "a special file"
}

// openStdin opens --stdin: "" is an empty stdin, "-" is ours.
func openStdin(name string) (io.Reader, func(), error) {
	switch name {
	case "":
		return nil, func() {}, nil
	case "-":
		return os.Stdin, func() {}, nil
	}
	file, err := os.Open(name)
	if err != nil {
		return nil, func() {}, verdict.Errorf(verdict.InvalidArgument, "--stdin", name, "--stdin %s: %w", name, err)
	}
	return file, func() { file.Close() }, nil
}
