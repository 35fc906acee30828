package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/agentbox/agentbox/internal/units"
	"github.com/agentbox/agentbox/sandbox"
	"github.com/agentbox/agentbox/supervisor/task"
	"github.com/agentbox/agentbox/verdict"
)

// submitFlags are the flags of `agentbox submit`: the task's, named as `agentbox run`'s.
type submitFlags struct {
	memory, outputLimit               string
	cpus                              float64
	pids                              int64
	timeout, cpuTime, clockResolution time.Duration
	env, labels                       []string
	stdin, priority, idempotencyKey   string
	batch                             string
	maxAttempts                       int
	wait                              bool
}

const submitLong = `Submits MODULE to agentboxd, which queues it and runs it under the limits given (the flags
of "agentbox run", with its defaults). MODULE is a .wasm file, pushed first, or the digest
of a module pushed before ("agentbox module push"). As with run, everything after MODULE is
the guest's. Prints the task's ID; "agentbox wait ID" waits for it.

With --wait, waits for the verdict and prints and exits exactly as "agentbox run" does:
the guest's stdout and stderr on ours, or with --json the verdict object; the same exit
codes (see agentbox run --help).

Many at once: "agentbox submit DIR/ [ARGS...]" submits every DIR/*.wasm, and
"agentbox submit --batch FILE.jsonl" one task per line (a task.SubmitRequest as the API
takes it; its "module" may be a file, relative to FILE's directory; flags given fill in
what a line leaves out; - reads stdin). A terminal shows a progress bar with counts per
outcome; otherwise each task gets a line as it is accepted or, with --wait, finished.
The exit code is 0 only if every task was accepted (and, with --wait, ended ok); else that
of the first task that was not: 2 for a refusal, as run's for a verdict.`

func newSubmitCommand(code *int) *cobra.Command {
	var f submitFlags
	var cf clientFlags
	cmd := &cobra.Command{
		Use:   "submit [flags] MODULE.wasm|DIGEST|DIR/ [ARGS...]",
		Short: "Submit a task to agentboxd (--wait: and exit as agentbox run would)",
		Long:  submitLong,
	}
	cmd.RunE = clientRun(code, &cf, func(ctx context.Context, s session, args []string) int {
		return s.submit(ctx, f, cmd.Flags(), args)
	})
	fl := cmd.Flags()
	fl.SetInterspersed(false) // flags after MODULE are the guest's, as with run
	f.register(fl)
	cf.register(fl)
	return cmd
}

func (f *submitFlags) register(fl *pflag.FlagSet) {
	fl.StringVar(&f.memory, "memory", units.FormatSize(sandbox.DefaultMemory), "`SIZE` of memory for the whole task, as agentbox run")
	fl.Float64Var(&f.cpus, "cpus", sandbox.DefaultCPUs, "CPU quota in cores")
	fl.Int64Var(&f.pids, "pids", sandbox.DefaultPids, "most threads and processes the task may have")
	fl.DurationVar(&f.timeout, "timeout", sandbox.DefaultTimeout, "wall-clock limit of the run, compile excluded")
	fl.DurationVar(&f.cpuTime, "cpu-time", 0, "CPU-time limit (default: none)")
	fl.StringVar(&f.outputLimit, "output-limit", units.FormatSize(sandbox.DefaultOutputLimit), "cap (a `SIZE`) on each of stdout and stderr")
	fl.DurationVar(&f.clockResolution, "clock-resolution", sandbox.DefaultClockResolution, "guest clocks are rounded to this")
	fl.StringArrayVar(&f.env, "env", nil, "`KEY=VALUE` for the guest (repeatable)")
	fl.StringVar(&f.stdin, "stdin", "", "`FILE` to feed the guest's stdin, or - for ours (at most 1Mi)")
	fl.StringArrayVar(&f.labels, "label", nil, "`KEY=VALUE` label to filter on later (repeatable)")
	fl.StringVar(&f.priority, "priority", "", "`PRIORITY` among your own tasks: high, normal or low (default normal)")
	fl.IntVar(&f.maxAttempts, "max-attempts", 0, "attempts when our sandbox fails (sandbox_error; default 3)")
	fl.StringVar(&f.idempotencyKey, "idempotency-key", "", "a second submit with the same `KEY` returns the first task")
	fl.BoolVar(&f.wait, "wait", false, "wait for the verdict; print and exit as agentbox run")
	fl.StringVar(&f.batch, "batch", "", "submit every line of `FILE.jsonl` (- for stdin)")
}

// submit dispatches on what MODULE is: one task, a directory of them, or a batch file.
func (s session) submit(ctx context.Context, f submitFlags, fl *pflag.FlagSet, args []string) int {
	base, err := f.request(fl, s.stdin)
	if err != nil {
		return s.fail(err)
	}
	if f.batch != "" || (len(args) > 0 && isDir(args[0])) {
		return s.submitMany(ctx, f, base, args)
	}
	if len(args) == 0 || args[0] == "" {
		return s.fail(verdict.Errorf(verdict.InvalidArgument, "MODULE", "", "missing MODULE: %s", s.use))
	}
	return s.submitOne(ctx, base, args[0], guestArgs(args[1:]), f.wait)
}

// guestArgs drops a "--" right after MODULE, as `agentbox run` does.
func guestArgs(args []string) []string {
	if len(args) > 0 && args[0] == "--" {
		return args[1:]
	}
	return args
}

func isDir(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}

// submitOne pushes MODULE when it is a file, submits it and reports the task, or with
// wait its verdict.
func (s session) submitOne(ctx context.Context, r task.SubmitRequest, module string, args []string, wait bool) int {
	var err error
	if r.Module, err = s.moduleRef(ctx, module); err != nil {
		return s.fail(err)
	}
	r.Args = args
	t, err := s.c.Submit(ctx, r)
	if err != nil {
		return s.fail(asFlag(err))
	}
	if wait {
		return s.finish(ctx, t.ID)
	}
	if s.format == formatTable {
		fmt.Fprintln(s.out.stdout, t.ID)
		return exitOK
	}
	s.print(t)
	return exitOK
}

// moduleRef is the digest MODULE names, pushing it first when it is a file.
func (s session) moduleRef(ctx context.Context, module string) (string, error) {
	if d, ok := moduleDigest(module); ok {
		return d, nil
	}
	m, err := s.push(ctx, module)
	return m.Digest, err
}

// request is the part of a SubmitRequest the flags make. A limit the user did not set is
// left out, so that the daemon's defaults (those of `agentbox run`) apply.
func (f submitFlags) request(fl *pflag.FlagSet, stdin io.Reader) (task.SubmitRequest, error) {
	r := task.SubmitRequest{Priority: task.Priority(f.priority), IdempotencyKey: f.idempotencyKey}
	var err error
	if r.Limits, err = f.limits(fl); err != nil {
		return r, err
	}
	if fl.Changed("env") {
		if r.Env, err = checkEnv(f.env); err != nil {
			return r, err
		}
	}
	if r.Labels, err = parseLabels("--label", f.labels); err != nil {
		return r, err
	}
	r.Retry.MaxAttempts = f.maxAttempts
	if fl.Changed("max-attempts") && f.maxAttempts <= 0 {
		return r, badFlag("--max-attempts", strconv.Itoa(f.maxAttempts), "must be more than 0")
	}
	r.Stdin, err = readStdin(f.stdin, stdin)
	return r, err
}

// limits are the limit flags the user set, in the forms the flags take. Zero is refused
// for the two that would otherwise vanish from the JSON and silently mean the default.
func (f submitFlags) limits(fl *pflag.FlagSet) (task.Limits, error) {
	var l task.Limits
	set := func(name string, v *string, value string) {
		if fl.Changed(name) {
			*v = value
		}
	}
	set("memory", &l.Memory, f.memory)
	set("output-limit", &l.OutputLimit, f.outputLimit)
	set("timeout", &l.Timeout, f.timeout.String())
	set("cpu-time", &l.CPUTime, f.cpuTime.String())
	set("clock-resolution", &l.ClockResolution, f.clockResolution.String())
	if fl.Changed("cpus") {
		if f.cpus <= 0 {
			return l, badFlag("--cpus", fmtFloat(f.cpus), "must be more than 0")
		}
		l.CPUs = f.cpus
	}
	if fl.Changed("pids") {
		if f.pids <= 0 {
			return l, badFlag("--pids", strconv.FormatInt(f.pids, 10), "must be more than 0")
		}
		l.Pids = f.pids
	}
	return l, nil
}

// readStdin reads --stdin whole (the API carries it in the request), refusing more than
// the daemon takes before sending it.
func readStdin(name string, ours io.Reader) ([]byte, error) {
	if name == "" {
		return nil, nil
	}
	in := ours
	if name != "-" {
		file, err := os.Open(name)
		if err != nil {
			return nil, verdict.Errorf(verdict.InvalidArgument, "--stdin", name, "--stdin %s: %w", name, err)
		}
		defer file.Close()
		in = file
	}
	b, err := io.ReadAll(io.LimitReader(in, task.MaxStdinBytes+1))
	if err != nil {
		return nil, verdict.Errorf(verdict.InvalidArgument, "--stdin", name, "--stdin %s: %w", name, err)
	}
	if len(b) > task.MaxStdinBytes {
		return nil, verdict.Errorf(verdict.TooLarge, "--stdin", name, "--stdin %s: more than %s, the most a task's stdin may be", name, units.FormatSize(task.MaxStdinBytes))
	}
	return b, nil
}

// flagOfField maps the API's JSON fields to the flags that set them, so that a refusal of
// a single submit names what the user typed.
var flagOfField = map[string]string{
	"limits.memory": "--memory", "limits.cpus": "--cpus", "limits.pids": "--pids",
	"limits.timeout": "--timeout", "limits.cpu_time": "--cpu-time", "limits.output_limit": "--output-limit",
	"limits.clock_resolution": "--clock-resolution", "env": "--env", "stdin": "--stdin", "labels": "--label",
	"priority": "--priority", "retry.max_attempts": "--max-attempts", "idempotency_key": "--idempotency-key",
	"module": "MODULE", "args": "ARGS",
}

// asFlag renames the field of the daemon's refusal to the flag behind it.
func asFlag(err error) error {
	var e *verdict.Error
	if !errors.As(err, &e) {
		return err
	}
	field := e.Field
	if i := strings.IndexByte(field, '['); i >= 0 {
		field = field[:i] // env[3] is --env
	}
	flag, ok := flagOfField[field]
	if !ok {
		return err
	}
	return &verdict.Error{Code: e.Code, Field: flag, Value: e.Value, Message: strings.Replace(e.Message, e.Field, flag, 1)}
}
