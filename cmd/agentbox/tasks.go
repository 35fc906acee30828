package main

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/agentbox/agentbox/outcome"
	"github.com/agentbox/agentbox/supervisor/task"
	"github.com/agentbox/agentbox/verdict"
)

func newGetCommand(code *int) *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "get [flags] ID",
		Short: "Show a task of agentboxd: state, limits, attempts and verdict",
		RunE: clientRun(code, &f, func(ctx context.Context, s session, args []string) int {
			id, err := s.oneArg(args, "ID")
			if err != nil {
				return s.fail(err)
			}
			t, err := s.c.Get(ctx, id)
			if err != nil {
				return s.fail(err)
			}
			if s.format != formatTable {
				s.print(t)
				return exitOK
			}
			printTask(s.out.stdout, t)
			return exitOK
		}),
	}
	f.register(cmd.Flags())
	return cmd
}

// printTask describes t for people, one field a line, attempts last.
func printTask(w io.Writer, t task.Task) {
	tw := table(w)
	row := func(k, v string) {
		if v != "" {
			fmt.Fprintf(tw, "%s:\t%s\n", k, v)
		}
	}
	row("ID", t.ID)
	row("State", string(t.State))
	if t.Verdict != nil {
		row("Outcome", string(t.Verdict.Outcome))
		row("Message", t.Verdict.Message)
	}
	row("Module", t.Module)
	row("Args", strings.Join(t.Args, " "))
	row("Labels", labelText(t.Labels))
	row("Priority", string(t.Priority))
	row("Limits", limitsText(t.Limits))
	row("Created", timeText(t.CreatedAt))
	row("Updated", timeText(t.UpdatedAt))
	if t.CancelRequested {
		row("Cancel", "requested")
	}
	tw.Flush()
	if len(t.Attempts) == 0 {
		return
	}
	fmt.Fprintln(w, "Attempts:")
	tw = table(w)
	fmt.Fprintln(tw, "  N\tHOST\tSTARTED\tOUTCOME\tMESSAGE")
	for _, a := range t.Attempts {
		o, msg := "running", ""
		if a.Verdict != nil {
			o, msg = string(a.Verdict.Outcome), a.Verdict.Message
		}
		fmt.Fprintf(tw, "  %d\t%s\t%s\t%s\t%s\n", a.N, a.Host, timeText(a.StartedAt), o, msg)
	}
	tw.Flush()
}

func limitsText(l verdict.Limits) string {
	s := fmt.Sprintf("memory %s, cpus %g, pids %d, timeout %s, output %s", l.Memory, l.CPUs, l.Pids, l.Timeout, l.OutputLimit)
	if l.CPUTime != "" {
		s += ", cpu-time " + l.CPUTime
	}
	return s
}

func timeText(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.Local().Format("2006-01-02 15:04:05")
}

// labelText renders labels as k=v pairs in key order.
func labelText(labels map[string]string) string {
	pairs := make([]string, 0, len(labels))
	for k, v := range labels {
		pairs = append(pairs, k+"="+v)
	}
	sort.Strings(pairs)
	return strings.Join(pairs, ",")
}

const waitLong = `Waits until the task has its verdict, then prints as "agentbox run" does: the guest's
stdout and stderr on ours, and "agentbox: OUTCOME: message" on stderr for a verdict other
than ok; with --json, the verdict object exactly as "agentbox run --json" prints it. The exit
code is the one "agentbox run" would give (see agentbox run --help). Interrupting the wait
(exit 130) leaves the task running.`

func newWaitCommand(code *int) *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "wait [flags] ID",
		Short: "Wait for a task of agentboxd and exit as agentbox run would",
		Long:  waitLong,
		RunE: clientRun(code, &f, func(ctx context.Context, s session, args []string) int {
			id, err := s.oneArg(args, "ID")
			if err != nil {
				return s.fail(err)
			}
			return s.finish(ctx, id)
		}),
	}
	f.register(cmd.Flags())
	return cmd
}

// finish waits for task id, prints its verdict as `agentbox run` would and returns the
// exit code run would give. An interrupted wait leaves the task alone, and says so.
func (s session) finish(ctx context.Context, id string) int {
	t, err := s.c.Wait(ctx, id)
	if err != nil && ctx.Err() != nil {
		state := t.State
		if state == "" {
			state = "not final"
		}
		fmt.Fprintf(s.out.stderr, "agentbox: interrupted; task %s is %s and keeps going: agentbox wait %s\n", id, state, id)
		return exitCancelled
	}
	if err != nil {
		return s.fail(err)
	}
	v, err := s.c.Verdict(ctx, id)
	if err != nil {
		return s.fail(err)
	}
	return s.reportVerdict(v)
}

// reportVerdict is output.verdict for a verdict that came from the daemon: the guest's
// output first, then warnings and the outcome line, or the one JSON object.
func (s session) reportVerdict(v verdict.Verdict) int {
	if s.format == formatTable {
		writeOutput(s.out.stdout, v.Stdout)
		writeOutput(s.out.stderr, v.Stderr)
	}
	s.out.warn(v.Warnings)
	if s.format == formatTable && v.Outcome != outcome.OK {
		fmt.Fprintf(s.out.stderr, "agentbox: %s: %s\n", v.Outcome, v.Message)
	}
	if s.format != formatTable {
		s.print(v)
	}
	var guest uint32
	if v.ExitCode != nil {
		guest = *v.ExitCode
	}
	return exitCodeFor(v.Outcome, guest)
}

func writeOutput(w io.Writer, s *string) {
	if s != nil {
		io.WriteString(w, *s)
	}
}

func newCancelCommand(code *int) *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "cancel [flags] ID",
		Short: "Cancel a task of agentboxd: a queued one never runs, a running one is killed",
		RunE: clientRun(code, &f, func(ctx context.Context, s session, args []string) int {
			id, err := s.oneArg(args, "ID")
			if err != nil {
				return s.fail(err)
			}
			t, err := s.c.Cancel(ctx, id)
			if err != nil {
				return s.fail(err)
			}
			if s.format != formatTable {
				s.print(t)
				return exitOK
			}
			fmt.Fprintf(s.out.stdout, "%s\t%s\n", t.ID, taskResult(t))
			return exitOK
		}),
	}
	f.register(cmd.Flags())
	return cmd
}

// taskResult is a task's state in one word: its outcome once final.
func taskResult(t task.Task) string {
	if t.Final() {
		return string(t.Outcome())
	}
	if t.CancelRequested {
		return string(t.State) + " (cancel requested)"
	}
	return string(t.State)
}

// lsFlags are `agentbox ls`'s own flags.
type lsFlags struct {
	state, outcome, since string
	labels                []string
	limit                 int
	all                   bool
}

func newLsCommand(code *int) *cobra.Command {
	var f clientFlags
	var l lsFlags
	cmd := &cobra.Command{
		Use:   "ls [flags]",
		Short: "List tasks of agentboxd, newest first",
		RunE: clientRun(code, &f, func(ctx context.Context, s session, args []string) int {
			if len(args) > 0 {
				return s.fail(verdict.Errorf(verdict.InvalidArgument, "ARGS", args[0], "agentbox ls takes no arguments, got %q: filter with --state, --outcome, --label", args[0]))
			}
			return s.list(ctx, l)
		}),
	}
	fl := cmd.Flags()
	fl.StringVar(&l.state, "state", "", "only tasks in `STATE`: queued, running or done")
	fl.StringVar(&l.outcome, "outcome", "", "only final tasks with `OUTCOME` (ok, exit, trap, timeout, ...)")
	fl.StringArrayVar(&l.labels, "label", nil, "only tasks with label `KEY=VALUE` (repeatable: all must match)")
	fl.StringVar(&l.since, "since", "", "only tasks created since `WHEN`: a duration back (1h) or a time (2006-01-02T15:04:05Z)")
	fl.IntVar(&l.limit, "limit", 0, "at most `N` tasks (default: the daemon's page, 100)")
	fl.BoolVar(&l.all, "all", false, "every matching task, page after page")
	f.register(fl)
	return cmd
}

// filter checks the flags of ls and makes them a task.Filter.
func (l lsFlags) filter(now time.Time) (task.Filter, error) {
	f := task.Filter{State: task.State(l.state), Limit: l.limit}
	if l.state != "" && !validState(f.State) {
		return f, verdict.Errorf(verdict.InvalidArgument, "--state", l.state, "--state %q: want one of %v", l.state, task.States)
	}
	if l.outcome != "" {
		o, err := outcome.Parse(l.outcome)
		if err != nil {
			return f, verdict.Errorf(verdict.InvalidArgument, "--outcome", l.outcome, "--outcome: %w", err)
		}
		f.Outcome = o
	}
	if l.limit < 0 {
		return f, verdict.Errorf(verdict.InvalidArgument, "--limit", fmt.Sprint(l.limit), "--limit %d: must not be negative", l.limit)
	}
	var err error
	if f.Labels, err = parseLabels("--label", l.labels); err != nil {
		return f, err
	}
	f.Since, err = parseSince(l.since, now)
	return f, err
}

func validState(st task.State) bool {
	for _, v := range task.States {
		if st == v {
			return true
		}
	}
	return false
}

// parseLabels parses KEY=VALUE flags into a map; nil when there are none.
func parseLabels(flag string, kvs []string) (map[string]string, error) {
	if len(kvs) == 0 {
		return nil, nil
	}
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, verdict.Errorf(verdict.InvalidArgument, flag, kv, "%s %q: want KEY=VALUE", flag, kv)
		}
		m[k] = v
	}
	return m, nil
}

// parseSince reads --since: a duration back from now, an RFC 3339 time, or a date.
func parseSince(v string, now time.Time) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(v); err == nil && d > 0 {
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, nil
	}
	if t, err := time.ParseInLocation(time.DateOnly, v, time.Local); err == nil {
		return t, nil
	}
	return time.Time{}, verdict.Errorf(verdict.InvalidArgument, "--since", v,
		"--since %q: want a duration such as 1h, a time such as 2006-01-02T15:04:05Z, or a date such as 2006-01-02", v)
}

// list prints one page of tasks, or every page with --all.
func (s session) list(ctx context.Context, l lsFlags) int {
	f, err := l.filter(time.Now())
	if err != nil {
		return s.fail(err)
	}
	var page task.Page
	for {
		p, err := s.c.List(ctx, f)
		if err != nil {
			return s.fail(err)
		}
		page.Tasks, page.NextCursor = append(page.Tasks, p.Tasks...), p.NextCursor
		if !l.all || p.NextCursor == "" {
			break
		}
		f.Cursor = p.NextCursor
	}
	s.printTasks(page)
	return exitOK
}

func (s session) printTasks(p task.Page) {
	switch s.format {
	case formatJSON:
		s.print(p)
		return
	case formatJSONL:
		for _, t := range p.Tasks {
			s.print(t)
		}
		return
	}
	tw := table(s.out.stdout)
	fmt.Fprintln(tw, "ID\tSTATE\tMODULE\tCREATED\tLABELS")
	for _, t := range p.Tasks {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", t.ID, taskResult(t), shortDigest(t.Module), timeText(t.CreatedAt), labelText(t.Labels))
	}
	tw.Flush()
	if p.NextCursor != "" {
		fmt.Fprintf(s.out.stderr, "agentbox: more tasks match: --all lists them all\n")
	}
}

// shortDigest is the start of a digest, enough to tell modules apart in a table.
func shortDigest(d string) string {
	if len(d) > 12 {
		return d[:12]
	}
	return d
}

func newLogsCommand(code *int) *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "logs [flags] ID",
		Short: "Print the stdout and stderr a finished task of agentboxd captured",
		Long: `Prints the guest's captured stdout on stdout and its stderr on stderr; with --json, the
verdict object with both, as "agentbox run --json" prints it. The task must be final.`,
		RunE: clientRun(code, &f, func(ctx context.Context, s session, args []string) int {
			id, err := s.oneArg(args, "ID")
			if err != nil {
				return s.fail(err)
			}
			v, err := s.c.Verdict(ctx, id)
			if err != nil {
				return s.fail(err)
			}
			if s.format != formatTable {
				s.print(v)
				return exitOK
			}
			writeOutput(s.out.stdout, v.Stdout)
			writeOutput(s.out.stderr, v.Stderr)
			warnTruncated(s.out.stderr, v)
			return exitOK
		}),
	}
	f.register(cmd.Flags())
	return cmd
}

func warnTruncated(w io.Writer, v verdict.Verdict) {
	for _, t := range []struct {
		name string
		cut  bool
	}{{"stdout", v.StdoutTruncated}, {"stderr", v.StderrTruncated}} {
		if t.cut {
			fmt.Fprintf(w, "agentbox: the guest's %s was cut at the output limit %s\n", t.name, v.Limits.OutputLimit)
		}
	}
}

func newEventsCommand(code *int) *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "events [flags]",
		Short: "Follow changes of agentboxd's tasks as they happen, until interrupted",
		Long: `Prints one line per task change: time, task, state (the outcome once final). With -o json
or jsonl, one event object per line. Ends with exit 0 on SIGINT, and with exit 2 when the
daemon ends the stream.`,
		RunE: clientRun(code, &f, func(ctx context.Context, s session, args []string) int {
			if len(args) > 0 {
				return s.fail(verdict.Errorf(verdict.InvalidArgument, "ARGS", args[0], "agentbox events takes no arguments, got %q", args[0]))
			}
			return s.follow(ctx)
		}),
	}
	f.register(cmd.Flags())
	return cmd
}

// follow prints events until ctx ends (exit 0) or the stream breaks (an error).
func (s session) follow(ctx context.Context) int {
	st, err := s.c.Events(ctx)
	if err != nil {
		return s.fail(err)
	}
	for e := range st.C {
		if s.format != formatTable {
			s.out.stdout.Write(compactJSON(e))
			continue
		}
		t := e.Task
		fmt.Fprintf(s.out.stdout, "%s  %s  %s\n", t.UpdatedAt.Local().Format("15:04:05.000"), t.ID, taskResult(t))
	}
	if ctx.Err() != nil {
		return exitOK // interrupted: the way to stop following
	}
	return s.fail(st.Err())
}
