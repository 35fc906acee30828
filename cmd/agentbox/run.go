package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/agentbox/agentbox/internal/units"
	"github.com/agentbox/agentbox/outcome"
	"github.com/agentbox/agentbox/sandbox"
)

// runFlags are the flags of `agentbox run`, as typed.
type runFlags struct {
	memory, outputLimit string
	cpus                float64
	pids                int64
	timeout, cpuTime    time.Duration
	clockResolution     time.Duration
	env, dirs           []string
	stdin               string
	json                bool
	cacheDir, stateDir  string
}

func newRunCommand(code *int) *cobra.Command {
	var f runFlags
	cmd := &cobra.Command{
		Use:   "run [flags] MODULE.wasm [-- ARGS...]",
		Short: "Run one WASI module in a sandboxed child and report the verdict",
		Long: `Runs MODULE.wasm in its own child process: new user, pid, mount, net, ipc and uts
namespaces, a cgroup with memory, CPU and pids limits, a seccomp allowlist, and wazero inside.
Without --json the guest's stdout and stderr stream to ours and a verdict other than ok is
printed to stderr. With --json stdout is exactly one JSON object. The exit code is the guest's
own for ok and exit, and a distinct code for every other outcome (see the README).`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := runModule(cmd.Context(), f, args)
			*code = c
			return err
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.memory, "memory", "256Mi", "memory for the whole task (runtime + guest), e.g. 64Mi, 1Gi")
	fl.Float64Var(&f.cpus, "cpus", sandbox.DefaultCPUs, "CPU quota in cores, e.g. 0.5")
	fl.Int64Var(&f.pids, "pids", sandbox.DefaultPids, "most threads and processes the task may have")
	fl.DurationVar(&f.timeout, "timeout", sandbox.DefaultTimeout, "wall-clock limit, e.g. 30s")
	fl.DurationVar(&f.cpuTime, "cpu-time", 0, "CPU-time limit, e.g. 10s (default: none)")
	fl.StringVar(&f.outputLimit, "output-limit", "1Mi", "cap on each of stdout and stderr")
	fl.StringArrayVar(&f.env, "env", nil, "KEY=VALUE for the guest (repeatable); the host environment never reaches it")
	fl.StringVar(&f.stdin, "stdin", "", "file to feed the guest's stdin, or - for ours (default: empty)")
	fl.StringArrayVar(&f.dirs, "dir", nil, "HOST[:GUEST][:ro] directory preopened for the guest (repeatable)")
	fl.DurationVar(&f.clockResolution, "clock-resolution", sandbox.DefaultClockResolution, "guest clocks are rounded to this")
	fl.BoolVar(&f.json, "json", false, "print the verdict as one JSON object on stdout")
	fl.StringVar(&f.cacheDir, "cache-dir", "/var/cache/agentbox", "compiled-code cache (empty disables it)")
	fl.StringVar(&f.stateDir, "state-dir", "/run/agentbox", "where uid slot locks live")
	return cmd
}

// runModule parses the flags into a spec, runs it and prints the verdict.
func runModule(ctx context.Context, f runFlags, args []string) (int, error) {
	spec, closeStdin, err := f.spec(args)
	if err != nil {
		return exitUsage, err
	}
	defer closeStdin()
	sb, err := sandbox.New(sandbox.Config{CacheDir: f.cacheDir, StateDir: f.stateDir})
	if err != nil {
		return exitSandboxError, err
	}
	defer sb.Close()
	if !f.json {
		spec.Stdout, spec.Stderr = os.Stdout, os.Stderr
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := sb.Run(ctx, spec)
	if err != nil {
		return exitUsage, err
	}
	if f.json {
		return exitCodeFor(res.Outcome, res.ExitCode), printJSON(os.Stdout, res)
	}
	if res.Outcome != outcome.OK {
		fmt.Fprintf(os.Stderr, "agentbox: %s: %s\n", res.Outcome, res.Message)
	}
	return exitCodeFor(res.Outcome, res.ExitCode), nil
}

// spec turns the typed flags into a sandbox.Spec, naming the flag and value on error.
func (f runFlags) spec(args []string) (sandbox.Spec, func(), error) {
	noop := func() {}
	var s sandbox.Spec
	var err error
	if s.Module, err = os.ReadFile(args[0]); err != nil {
		return s, noop, fmt.Errorf("cannot read module: %w", err)
	}
	s.Args = append([]string{baseName(args[0])}, args[1:]...)
	if s.Limits, err = f.limits(); err != nil {
		return s, noop, err
	}
	for _, kv := range f.env {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
			return s, noop, fmt.Errorf("--env %q: want KEY=VALUE", kv)
		}
	}
	s.Env = f.env
	for _, d := range f.dirs {
		dir, err := parseDir(d)
		if err != nil {
			return s, noop, err
		}
		s.Dirs = append(s.Dirs, dir)
	}
	return f.openStdin(s)
}

func (f runFlags) limits() (sandbox.Limits, error) {
	mem, err := units.ParseSize(f.memory)
	if err != nil {
		return sandbox.Limits{}, fmt.Errorf("--memory: %w", err)
	}
	out, err := units.ParseSize(f.outputLimit)
	if err != nil {
		return sandbox.Limits{}, fmt.Errorf("--output-limit: %w", err)
	}
	checks := []struct {
		bad bool
		msg string
	}{
		{f.cpus <= 0, fmt.Sprintf("--cpus %g: must be more than 0", f.cpus)},
		{f.pids <= 0, fmt.Sprintf("--pids %d: must be more than 0", f.pids)},
		{f.timeout <= 0, fmt.Sprintf("--timeout %s: must be more than 0", f.timeout)},
		{f.cpuTime < 0, fmt.Sprintf("--cpu-time %s: must not be negative", f.cpuTime)},
		{out == 0, "--output-limit 0: must be more than 0"},
		{f.clockResolution <= 0, fmt.Sprintf("--clock-resolution %s: must be more than 0", f.clockResolution)},
	}
	for _, c := range checks {
		if c.bad {
			return sandbox.Limits{}, fmt.Errorf("%s", c.msg)
		}
	}
	return sandbox.Limits{MemoryBytes: mem, CPUs: f.cpus, Pids: f.pids, Timeout: f.timeout, CPUTime: f.cpuTime,
		OutputBytes: out, ClockResolution: f.clockResolution}, nil
}

// parseDir parses HOST[:GUEST][:ro].
func parseDir(s string) (sandbox.Dir, error) {
	parts := strings.Split(s, ":")
	d := sandbox.Dir{HostPath: parts[0]}
	if len(parts) > 1 && parts[len(parts)-1] == "ro" {
		d.ReadOnly, parts = true, parts[:len(parts)-1]
	}
	switch {
	case len(parts) > 2 || parts[0] == "":
		return d, fmt.Errorf("--dir %q: want HOST[:GUEST][:ro]", s)
	case len(parts) == 2 && parts[1] != "":
		d.GuestPath = parts[1]
	default:
		d.GuestPath = parts[0]
	}
	st, err := os.Stat(d.HostPath)
	if err != nil {
		return d, fmt.Errorf("--dir %q: %w", s, err)
	}
	if !st.IsDir() {
		return d, fmt.Errorf("--dir %q: %s is not a directory", s, d.HostPath)
	}
	return d, nil
}

func (f runFlags) openStdin(s sandbox.Spec) (sandbox.Spec, func(), error) {
	switch f.stdin {
	case "":
		return s, func() {}, nil
	case "-":
		s.Stdin = os.Stdin
		return s, func() {}, nil
	}
	file, err := os.Open(f.stdin)
	if err != nil {
		return s, func() {}, fmt.Errorf("--stdin: %w", err)
	}
	s.Stdin = file
	return s, func() { file.Close() }, nil
}

func baseName(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[i+1:]
	}
	return p
}

// jsonVerdict is the --json contract (README: users script against these names).
type jsonVerdict struct {
	Outcome         outcome.Outcome `json:"outcome"`
	Message         string          `json:"message"`
	ExitCode        uint32          `json:"exit_code"`
	Stdout          string          `json:"stdout"`
	Stderr          string          `json:"stderr"`
	StdoutTruncated bool            `json:"stdout_truncated"`
	StderrTruncated bool            `json:"stderr_truncated"`
	Usage           sandbox.Usage   `json:"usage"`
	Limits          jsonLimits      `json:"limits"`
}

// jsonLimits echoes the limits as applied, in the units the flags take.
type jsonLimits struct {
	Memory          string  `json:"memory"`
	MemoryBytes     uint64  `json:"memory_bytes"`
	CPUs            float64 `json:"cpus"`
	Pids            int64   `json:"pids"`
	Timeout         string  `json:"timeout"`
	CPUTime         string  `json:"cpu_time,omitempty"`
	OutputLimit     string  `json:"output_limit"`
	ClockResolution string  `json:"clock_resolution"`
}

func printJSON(w io.Writer, r sandbox.Result) error {
	l := r.Limits
	v := jsonVerdict{Outcome: r.Outcome, Message: r.Message, ExitCode: r.ExitCode,
		Stdout: string(r.Stdout), Stderr: string(r.Stderr),
		StdoutTruncated: r.StdoutTruncated, StderrTruncated: r.StderrTruncated, Usage: r.Usage,
		Limits: jsonLimits{Memory: units.FormatSize(l.MemoryBytes), MemoryBytes: l.MemoryBytes, CPUs: l.CPUs, Pids: l.Pids,
			Timeout: l.Timeout.String(), OutputLimit: units.FormatSize(l.OutputBytes), ClockResolution: l.ClockResolution.String()}}
	if l.CPUTime > 0 {
		v.Limits.CPUTime = l.CPUTime.String()
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
