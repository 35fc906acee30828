package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/agentbox/agentbox/internal/units"
	"github.com/agentbox/agentbox/sandbox"
	"github.com/agentbox/agentbox/verdict"
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
	verdictFile         string
	cacheDir            string
	cacheMaxSize        string
	compileTimeout      time.Duration
	compileMemory       string
	maxModuleSize       string
	allowSpeculation    bool
}

const runLong = `Runs MODULE in its own child process: new user, pid, mount, net, ipc and uts namespaces,
a cgroup with memory, CPU and pids limits, a seccomp allowlist, and wazero inside.

Everything after MODULE is the guest's, flags included: "agentbox run m.wasm --json" passes
--json to the guest. A "--" right after MODULE is dropped, so "agentbox run m.wasm -- a b"
passes a and b; write "-- --" to pass a literal "--" first.

Without --json the guest's stdout and stderr stream to ours; warnings, and a verdict other
than ok, follow on stderr as "agentbox: ..." lines. With --json, stdout is exactly one JSON
object: the verdict, with the guest's captured stdout and stderr, or {"error": {"code",
"message", "field", "value"}} when the task was refused before it ran. --verdict-file PATH
writes the same object, without the stdout and stderr content, to PATH atomically (a
temporary file in the same directory, renamed), errors included; the output still streams.
"exit_code" is present only when the guest itself exited (ok, exit).

Exit codes:
%s
A guest's own exit code passes through, so a guest that exits 121 looks like memory_limit:
read "outcome" from --verdict-file or --json to tell them apart. If the verdict file cannot
be written after the run, the exit code is 125.`

func newRunCommand(code *int) *cobra.Command {
	var f runFlags
	cmd := &cobra.Command{
		Use:   "run [flags] MODULE.wasm [ARGS...]",
		Short: "Run one WASI module in a sandboxed child and report the verdict",
		Long:  fmt.Sprintf(runLong, exitCodeHelp()),
		Args:  cobra.ArbitraryArgs, // checked by runModule, to report a missing MODULE like any other error
		RunE: func(cmd *cobra.Command, args []string) error {
			out := output{json: f.json, verdictFile: f.verdictFile, stdout: cmd.OutOrStdout(), stderr: cmd.ErrOrStderr()}
			*code = runModule(cmd.Context(), f, args, out)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.SetInterspersed(false) // flags after MODULE are the guest's
	fl.StringVar(&f.memory, "memory", units.FormatSize(sandbox.DefaultMemory), "`SIZE` of memory for the whole task (runtime + compiled code + guest), e.g. 64Mi, 1Gi")
	fl.Float64Var(&f.cpus, "cpus", sandbox.DefaultCPUs, "CPU quota in cores, e.g. 0.5; at most this host's CPU count")
	fl.Int64Var(&f.pids, "pids", sandbox.DefaultPids, "most threads and processes the task may have")
	fl.DurationVar(&f.timeout, "timeout", sandbox.DefaultTimeout, "wall-clock limit of the run, compile excluded, e.g. 30s")
	fl.DurationVar(&f.cpuTime, "cpu-time", 0, "CPU-time limit, e.g. 10s (default: none)")
	fl.StringVar(&f.outputLimit, "output-limit", units.FormatSize(sandbox.DefaultOutputLimit), "cap (a `SIZE`) on each of stdout and stderr")
	fl.StringArrayVar(&f.env, "env", nil, "`KEY=VALUE` for the guest (repeatable); the host environment never reaches it")
	fl.StringVar(&f.stdin, "stdin", "", "`FILE` to feed the guest's stdin, or - for ours (default: empty)")
	fl.StringArrayVar(&f.dirs, "dir", nil, "`HOST[:GUEST][:ro|:rw]` directory preopened for the guest (repeatable; GUEST defaults to HOST made absolute; rw by default)")
	fl.DurationVar(&f.clockResolution, "clock-resolution", sandbox.DefaultClockResolution, "guest clocks are rounded to this")
	fl.BoolVar(&f.json, "json", false, "print the verdict (or the error) as one JSON object on stdout")
	fl.StringVar(&f.verdictFile, "verdict-file", "", "also write the verdict (or the error) as JSON to `PATH`, atomically")
	fl.StringVar(&f.cacheDir, "cache-dir", sandbox.DefaultCacheDir, "compiled-code cache `DIR` shared by every agentbox on the host (\"\" disables it)")
	fl.StringVar(&f.cacheMaxSize, "cache-max-size", units.FormatSize(sandbox.DefaultCacheMaxBytes), "`SIZE` bound of the cache; least recently used entries are evicted past it")
	fl.DurationVar(&f.compileTimeout, "compile-timeout", sandbox.DefaultCompileTimeout, "wall-clock budget of the sandboxed compile (invalid_module past it)")
	fl.StringVar(&f.compileMemory, "compile-memory", units.FormatSize(sandbox.DefaultCompileMemory), "`SIZE` of memory for the sandboxed compile (invalid_module past it)")
	fl.StringVar(&f.maxModuleSize, "max-module-size", units.FormatSize(sandbox.DefaultMaxModuleBytes), "refuse modules larger than this `SIZE` before reading them")
	fl.BoolVar(&f.allowSpeculation, "allow-speculation", false, "leave speculative store bypass and indirect branch speculation to the kernel's default (tasks force-disable both by default; see agentbox check)")
	return cmd
}

// runModule checks the request, runs it and reports the verdict; it returns the exit code.
// Everything the caller can get wrong is checked before sandbox.New, so that a bad request
// never gets as far as a spawn.
func runModule(ctx context.Context, f runFlags, args []string, out output) int {
	if out.verdictFile != "" {
		if err := checkVerdictFile(out.verdictFile); err != nil {
			out.verdictFile = "" // it cannot hold the error either
			return out.fail(err)
		}
	}
	req, err := f.request(args)
	if err != nil {
		return out.fail(err)
	}
	defer req.close()
	sb, err := newSandbox(req.config)
	if err != nil {
		return out.fail(err)
	}
	defer sb.Close()
	if !out.json {
		req.spec.Stdout, req.spec.Stderr = out.stdout, out.stderr
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := sb.Run(ctx, req.spec)
	if err != nil {
		out.warn(nonEmpty(sb.CacheWarning()))
		return out.fail(verdict.Errorf(verdict.InvalidArgument, "", "", "the sandbox refused the task: %w", err))
	}
	return out.verdict(res)
}

// newSandbox prepares the host side, first making sure this process has the privileges
// every spawn needs (root alone is not enough inside a container).
func newSandbox(cfg sandbox.Config) (*sandbox.Sandbox, error) {
	if err := sandbox.CheckPrivileges(); err != nil {
		return nil, setupError(err)
	}
	// Tasks start from agentbox-init when it sits beside us: the child then carries none
	// of this binary's client code (net/http, cobra), on both of its execs.
	cfg.ChildBinary, _ = sandbox.LocateChild()
	// One task per process: executing the child from its file saves copying it into a
	// sealed memfd first (docs/SECURITY.md, "The child binary", says why that is safe).
	cfg.ExecInPlace = true
	sb, err := sandbox.New(cfg)
	if err != nil {
		return nil, setupError(err)
	}
	return sb, nil
}

// setupError classifies an error of sandbox.New. None is our fault during a run, and none
// goes away by running the same command again, so all are exit 2, with a pointer to the
// command that says what the host lacks.
func setupError(err error) error {
	switch {
	case errors.Is(err, sandbox.ErrBadLimit):
		return verdict.Errorf(verdict.InvalidArgument, "", "", "%w", err)
	case errors.Is(err, sandbox.ErrUnsupported):
		return verdict.Errorf(verdict.Unsupported, "", "", "%w (agentbox check lists what this host lacks)", err)
	}
	return verdict.Errorf(verdict.SetupFailed, "", "", "cannot prepare the sandbox: %w (agentbox check lists what this host lacks)", err)
}

func nonEmpty(s string) []string {
	if s == "" {
		return nil
	}
	return []string{s}
}
